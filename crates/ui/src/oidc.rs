//! OIDC sign-in to the controller's UI: the authorization code flow with PKCE, `state` and
//! `nonce` (openidconnect), against a provider found by discovery. ID tokens are checked for
//! issuer, audience, expiry, nonce and an asymmetric signature by a key of the provider's JWKS,
//! fetched again (at most once a minute) when a token names a key it does not have. Their
//! claims name a Kubernetes user and groups as kube-apiserver's `--oidc-*` flags map them
//! ([`ClaimMapping`]); the UI then asks SubjectAccessReviews for that user, as for a token's.
//!
//! Tokens and the client secret are kept as secrets: no error here quotes one, nor a provider's
//! answer beyond its OAuth `error` code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use weaver_core::error::{Error, Result};

/// The path the provider sends the browser back to, under the UI's URL.
pub const CALLBACK_PATH: &str = "/oidc/callback";
/// How long a sign-in started may take at the provider before its `state` is forgotten.
pub const FLOW_AGE: Duration = Duration::from_secs(600);
/// Sign-ins started and not finished that are kept at most (each is rate-limited per address).
const MAX_PENDING: usize = 10_000;
/// The provider's JWKS is fetched again for an unknown key at most this often.
const JWKS_EVERY: Duration = Duration::from_secs(60);
/// Each request to the provider ends after this.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider (a discovery document, a JWKS, tokens).
const MAX_ANSWER: u64 = 1024 * 1024;
/// The only signatures an ID token may have: asymmetric ones, whose key the provider publishes.
/// `none` and HMAC (keyed with the client secret, or with a public key by an attacker who
/// swapped the algorithm) are refused.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The OIDC provider the controller's UI signs users in with, as its flags name it.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the ID tokens' `iss` (discovery is under it).
    pub issuer: String,
    pub client_id: String,
    /// None: a public client, PKCE only.
    pub client_secret: Option<SecretString>,
    /// The UI's URL as browsers reach it: the redirect URI is under it ([`CALLBACK_PATH`]).
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
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    started: Instant,
}

/// What discovery found, and the JWKS as last fetched.
struct Discovered {
    metadata: ProviderMetadataWithLogout,
    /// The keys, and when an unknown key last had them fetched again (None: never since
    /// discovery).
    jwks: Mutex<(CoreJsonWebKeySet, Option<Instant>)>,
}

type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointMaybeSet>;

/// The UI's OIDC provider.
pub struct Provider {
    pub config: OidcConfig,
    http: ureq::Agent,
    /// Found once, at the first sign-in (the operator starts while its provider is down).
    discovered: tokio::sync::OnceCell<Arc<Discovered>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// A request to the provider failed: the transport's reason (no URL query, no body).
#[derive(Debug)]
pub struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

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

    /// Sends one request to the provider, on a blocking thread (ureq is weaver's HTTP client).
    fn http_client(&self) -> impl Fn(openidconnect::HttpRequest) -> BoxedAnswer + use<> {
        let agent = self.http.clone();
        move |request| {
            let agent = agent.clone();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || send(&agent, request))
                    .await
                    .map_err(|err| HttpError(format!("the request stopped: {err}")))?
            })
        }
    }

    async fn discovered(&self) -> Result<Arc<Discovered>> {
        let discover = || async {
            let issuer = IssuerUrl::new(self.config.issuer.clone())
                .map_err(|err| Error::new(format!("--ui-oidc-issuer is not a URL: {err}")))?;
            let http = self.http_client();
            let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http).await.map_err(|err| {
                Error::new(format!(
                    "cannot discover the OIDC provider {} (its /.well-known/openid-configuration and JWKS): {}",
                    self.config.issuer,
                    error_chain(&err)
                ))
            })?;
            if metadata.token_endpoint().is_none() {
                return Err(Error::new(format!("the OIDC provider {} has no token endpoint", self.config.issuer)));
            }
            let jwks = Mutex::new((metadata.jwks().clone(), None));
            Ok(Arc::new(Discovered { metadata, jwks }))
        };
        self.discovered.get_or_try_init(discover).await.cloned()
    }

    fn client(&self, discovered: &Discovered) -> Result<Client> {
        let mut metadata = discovered.metadata.clone();
        let jwks = discovered.jwks.lock().unwrap_or_else(|e| e.into_inner()).0.clone();
        metadata = metadata.set_jwks(jwks);
        let token_url = metadata.token_endpoint().cloned().ok_or_else(|| Error::new("no token endpoint"))?;
        let secret = self.config.client_secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_string()));
        let redirect = RedirectUrl::new(self.redirect_uri())
            .map_err(|err| Error::new(format!("--ui-url does not make a redirect URI: {err}")))?;
        Ok(CoreClient::from_provider_metadata(metadata, ClientId::new(self.config.client_id.clone()), secret)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect))
    }

    /// Starts a sign-in for the browser whose sign-in cookie is `browser`: the provider's URL
    /// to send it to.
    pub async fn start(&self, browser: &str) -> Result<String> {
        let discovered = self.discovered().await?;
        let client = self.client(&discovered)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request =
            client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
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
        let flow = Pending { browser: browser.to_string(), verifier, nonce, started: now };
        pending.insert(state.secret().clone(), flow);
        Ok(url.to_string())
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
        let client = self.client(&discovered).map_err(Refused::Unavailable)?;
        let http = self.http_client();
        let exchanged = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(flow.verifier)
            .request_async(&http)
            .await;
        let response = exchanged.map_err(|err| self.token_refusal(err))?;
        let id_token = response.id_token().ok_or_else(|| Refused::Invalid("the provider sent no ID token".into()))?;
        let (identity, expires) = self.verified(&discovered, id_token, Some(&flow.nonce)).await?;
        Ok(SignedIn { identity, tokens: kept_tokens(&response, id_token, expires, None) })
    }

    /// The session's tokens refreshed: the identity the new ID token names (None: the provider
    /// sent none, the identity stays) and the new tokens. Err(Refused::Provider): the provider
    /// ended the session (the refresh token revoked or expired).
    pub async fn refresh(&self, tokens: &Tokens) -> std::result::Result<(Option<Identity>, Tokens), Refused> {
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(Refused::Provider("no refresh token".into()));
        };
        let discovered = self.discovered().await.map_err(Refused::Unavailable)?;
        let client = self.client(&discovered).map_err(Refused::Unavailable)?;
        let http = self.http_client();
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_string());
        let refreshed = client.exchange_refresh_token(&refresh_token).request_async(&http).await;
        let response = refreshed.map_err(|err| self.token_refusal(err))?;
        match response.id_token() {
            // A refreshed ID token has no nonce to check (OIDC Core 12.2).
            Some(id_token) => {
                let (identity, expires) = self.verified(&discovered, id_token, None).await?;
                Ok((Some(identity), kept_tokens(&response, id_token, expires, Some(tokens))))
            }
            // The provider may keep the ID token (OIDC Core 12.2): the refresh itself says the
            // session stands, until the access token it gave expires (else a minute), when it is
            // refreshed again; not at every request after the first ID token's expiry.
            None => {
                let mut kept = tokens.clone();
                if let Some(rotated) = response.refresh_token() {
                    kept.refresh_token = Some(rotated.secret().clone().into());
                }
                let lasts = response.expires_in().unwrap_or(std::time::Duration::from_secs(60));
                kept.id_token_expires = SystemTime::now() + lasts;
                Ok((None, kept))
            }
        }
    }

    /// Where the browser goes to end its session at the provider too (RP-initiated logout),
    /// when the provider advertises an `end_session_endpoint`.
    pub fn logout_url(&self, tokens: &Tokens) -> Option<String> {
        let discovered = self.discovered.get()?;
        let endpoint = discovered.metadata.additional_metadata().end_session_endpoint.clone()?;
        let post_logout = PostLogoutRedirectUrl::new(self.post_logout_uri()).ok()?;
        let mut logout = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.config.client_id.clone()))
            .set_post_logout_redirect_uri(post_logout);
        if let Ok(id_token) = tokens.id_token.expose_secret().parse::<CoreIdToken>() {
            logout = logout.set_id_token_hint(&id_token);
        }
        Some(logout.http_get_url().to_string())
    }

    /// The origin of the provider's end-session endpoint, once discovery found one: where a
    /// sign-out's answer sends the browser.
    pub fn logout_origin(&self) -> Option<String> {
        let endpoint = self.discovered.get()?.metadata.additional_metadata().end_session_endpoint.as_ref()?;
        let origin = endpoint.url().origin();
        // An opaque origin (not http or https) is allowed nowhere.
        origin.is_tuple().then(|| origin.ascii_serialization())
    }

    /// The identity `id_token` names, once it passes every check, and when it expires. A key
    /// the JWKS lacks has the JWKS fetched again (the provider rotated its keys), at most once
    /// a minute.
    async fn verified(
        &self,
        discovered: &Discovered,
        id_token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> std::result::Result<(Identity, SystemTime), Refused> {
        let check = |client: &Client| {
            let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS);
            let no_nonce = |_: Option<&Nonce>| Ok(());
            match nonce {
                Some(nonce) => id_token.claims(&verifier, nonce).map(|claims| claims.expiration()),
                None => id_token.claims(&verifier, no_nonce).map(|claims| claims.expiration()),
            }
        };
        let client = self.client(discovered).map_err(Refused::Unavailable)?;
        let expiration = match check(&client) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                if self.refetch_jwks(discovered).await.map_err(Refused::Unavailable)? =>
            {
                check(&self.client(discovered).map_err(Refused::Unavailable)?)
            }
            checked => checked,
        };
        let expiration = expiration.map_err(|err| Refused::Invalid(claims_refusal(&err)))?;
        let claims = payload(&id_token.to_string())
            .ok_or_else(|| Refused::Invalid("the ID token's claims are not a JSON object".into()))?;
        let identity = self.config.mapping.identity(&self.config.issuer, &claims).map_err(Refused::Invalid)?;
        Ok((identity, SystemTime::from(expiration)))
    }

    /// Fetches the JWKS again unless an unknown key had it fetched within [`JWKS_EVERY`]:
    /// whether it was (tokens naming keys that do not exist make one request a minute at most).
    async fn refetch_jwks(&self, discovered: &Discovered) -> Result<bool> {
        {
            let mut jwks = discovered.jwks.lock().unwrap_or_else(|e| e.into_inner());
            if jwks.1.is_some_and(|fetched| fetched.elapsed() < JWKS_EVERY) {
                return Ok(false);
            }
            // Claimed before the request: sign-ins at once refetch once.
            jwks.1 = Some(Instant::now());
        }
        let http = self.http_client();
        let fetched = CoreJsonWebKeySet::fetch_async(discovered.metadata.jwks_uri(), &http)
            .await
            .map_err(|err| Error::new(format!("cannot fetch the OIDC provider's JWKS again: {}", error_chain(&err))))?;
        discovered.jwks.lock().unwrap_or_else(|e| e.into_inner()).0 = fetched;
        Ok(true)
    }

    /// Why the token endpoint's answer signs no one in: its OAuth error code, never its
    /// description (a provider may echo what it was sent).
    fn token_refusal<RE: std::error::Error + 'static>(
        &self,
        err: RequestTokenError<RE, openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>>,
    ) -> Refused {
        match err {
            RequestTokenError::ServerResponse(response) => Refused::Provider(response.error().to_string()),
            RequestTokenError::Request(err) => Refused::Unavailable(Error::new(format!(
                "cannot reach the OIDC provider's token endpoint: {}",
                error_chain(&err)
            ))),
            RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
                Refused::Invalid("the provider's token endpoint answered something that is not a token".into())
            }
        }
    }
}

type BoxedAnswer =
    std::pin::Pin<Box<dyn Future<Output = std::result::Result<openidconnect::HttpResponse, HttpError>> + Send>>;

fn send(
    agent: &ureq::Agent,
    request: openidconnect::HttpRequest,
) -> std::result::Result<openidconnect::HttpResponse, HttpError> {
    let response = agent.run(request).map_err(|err| HttpError(err.to_string()))?;
    let (parts, mut body) = response.into_parts();
    let body = body.with_config().limit(MAX_ANSWER).read_to_vec().map_err(|err| HttpError(err.to_string()))?;
    Ok(openidconnect::HttpResponse::from_parts(parts, body))
}

/// What a session keeps of a token response: a refresh token sent, else the one it had.
fn kept_tokens(
    response: &CoreTokenResponse,
    id_token: &CoreIdToken,
    expires: SystemTime,
    before: Option<&Tokens>,
) -> Tokens {
    Tokens {
        id_token: id_token.to_string().into(),
        id_token_expires: expires,
        // A provider that does not rotate refresh tokens sends none with a refresh.
        refresh_token: response
            .refresh_token()
            .map(|token| token.secret().clone().into())
            .or_else(|| before.and_then(|tokens| tokens.refresh_token.clone())),
    }
}

/// A verified JWT's claims: its payload's JSON object. Read here, not from openidconnect's
/// typed claims, so that every claim is mapped as kube-apiserver reads it (any name, any type).
fn payload(jwt: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Which check an ID token failed, in words that quote nothing of the token.
fn claims_refusal(err: &ClaimsVerificationError) -> String {
    let what = match err {
        ClaimsVerificationError::Expired(_) => "it has expired",
        ClaimsVerificationError::InvalidAudience(_) => "it is not meant for this client (its audience)",
        ClaimsVerificationError::InvalidIssuer(_) => "another issuer made it",
        ClaimsVerificationError::InvalidNonce(_) => "its nonce is not this sign-in's",
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::DisallowedAlg(_))
        | ClaimsVerificationError::SignatureVerification(SignatureVerificationError::UnsupportedAlg(_))
        | ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoSignature) => {
            "its signature algorithm is not allowed (only asymmetric ones are)"
        }
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
            "no key of the provider's JWKS signed it"
        }
        ClaimsVerificationError::SignatureVerification(_) => "its signature does not verify",
        _ => "its claims do not verify",
    };
    format!("the ID token is refused: {what}")
}

/// An error and its sources, for a transport failure (never a provider's answer body).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
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

    #[test]
    fn a_payload_is_read_from_the_jwts_middle_part() {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","groups":["a"]}"#);
        let read = payload(&format!("e30.{body}.sig")).unwrap();
        assert_eq!(read["sub"], "alice");
        assert!(payload("not-a-jwt").is_none());
        assert!(payload("e30.!!!.sig").is_none());
    }
}
