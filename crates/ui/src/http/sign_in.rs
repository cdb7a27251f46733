//! Signing in with a token or at the OIDC provider, and out; and who the user is.

use std::collections::HashMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use weaver_engine::action::Progress;

use super::{Answer, FLOW_COOKIE, Server};
use crate::auth::{self, Auth, Refused};
use crate::{oidc, pages};

impl Server {
    /// The sign-in page: the OIDC provider's, when there is one, and a token to paste.
    pub(super) fn sign_in_page(&self, session: &str, errors: Vec<String>) -> Answer {
        let issuer = self.auth.as_ref().and_then(|auth| auth.oidc.as_ref()).map(|p| p.config.issuer.clone());
        self.page("sign_in.html", &self.chrome(session, errors, Vec::new()), pages::SignInPage { issuer })
    }

    /// The client a sign-in attempt counts against: the peer, or what a trusted proxy says.
    fn client_address(&self, auth: &Auth, request: &Request<Incoming>) -> std::net::IpAddr {
        let peer = request.extensions().get::<std::net::SocketAddr>().map(|peer| peer.ip());
        let peer = peer.unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        crate::proxy::client_address(peer, request.headers(), &auth.trusted_proxies)
    }

    /// `GET /sign-in/oidc`: the browser sent to the provider, its sign-in bound to a cookie of
    /// its own (the `state`, nonce and PKCE verifier stay here).
    pub(super) async fn sign_in_oidc(&self, request: &Request<Incoming>) -> Answer {
        let Some((auth, provider)) = self.auth.as_ref().and_then(|auth| Some((auth, auth.oidc.as_ref()?))) else {
            return Answer::text(StatusCode::NOT_FOUND, "no OIDC provider is configured: sign in with a token\n");
        };
        if let Err(refused) = auth.attempt(self.client_address(auth, request)) {
            return self.refused_page("", StatusCode::TOO_MANY_REQUESTS, refusal_message(refused, &self.options));
        }
        let browser = auth::new_id();
        match provider.start(&browser).await {
            Ok(url) => Answer { flow: Some(browser), ..Answer::see_other(url) },
            Err(err) => self.refused_page("", StatusCode::SERVICE_UNAVAILABLE, self.options.redactor.error(&err)),
        }
    }

    /// `GET /oidc/callback`: the provider's answer. Its `state` is used up here, whatever the
    /// outcome; the session cookie is Strict, so the page signed in on leads to the fleet
    /// itself (a redirect would still be part of the provider's cross-site navigation, which
    /// carries no Strict cookie).
    pub(super) async fn oidc_callback(
        &self,
        request: &Request<Incoming>,
        session: &str,
        query: &HashMap<String, String>,
    ) -> Answer {
        let Some(auth) = self.auth.as_ref().filter(|auth| auth.oidc.is_some()) else {
            return Answer::text(StatusCode::NOT_FOUND, "no OIDC provider is configured: sign in with a token\n");
        };
        if let Some(error) = query.get("error") {
            // Only the OAuth error code: a description is the provider's text, shown nowhere.
            let message = format!("the OIDC provider did not sign you in: {}", oauth_error_code(error));
            (self.options.on)(Progress::Warning(format!("ui: {message}")));
            return Answer {
                flow: Some(String::new()),
                ..self.refused_page(session, StatusCode::UNAUTHORIZED, message)
            };
        }
        let (Some(state), Some(code)) = (query.get("state"), query.get("code")) else {
            let message = "the OIDC provider's answer has no state or code: start the sign-in again".to_string();
            return self.refused_page(session, StatusCode::BAD_REQUEST, message);
        };
        let browser = super::cookie_of(request.headers(), FLOW_COOKIE).unwrap_or_default();
        match auth.sign_in_oidc(state, code, &browser).await {
            Ok(id) => {
                let name = auth.name_of(&id).unwrap_or_default();
                (self.options.on)(Progress::Status(format!("ui: {name} signed in with OIDC")));
                let age = auth.session_left(&id);
                let page = self.page("signed_in.html", &self.chrome(&id, Vec::new(), Vec::new()), ());
                Answer { session: Some((id, Some(age))), flow: Some(String::new()), ..page }
            }
            Err(refused) => {
                let status = match &refused {
                    Refused::Oidc(oidc::Refused::UnknownState) => StatusCode::BAD_REQUEST,
                    Refused::Oidc(oidc::Refused::Unavailable(_)) | Refused::Unavailable(_) => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::UNAUTHORIZED,
                };
                let message = refusal_message(refused, &self.options);
                (self.options.on)(Progress::Warning(format!("ui: an OIDC sign-in was refused: {message}")));
                Answer { flow: Some(String::new()), ..self.refused_page(session, status, message) }
            }
        }
    }

    /// The sign-in page with why the last sign-in did not sign anyone in.
    fn refused_page(&self, session: &str, status: StatusCode, message: String) -> Answer {
        Answer { status, ..self.sign_in_page(session, vec![message]) }
    }

    /// `GET /whoami`: the user, groups, how they signed in and how the claims were mapped,
    /// and when the session ends; never a token.
    pub(super) fn who_am_i(&self, session: &str) -> Answer {
        let Some(who) = self.auth.as_ref().and_then(|auth| auth.who_am_i(session)) else {
            return Answer::see_other("/sign-in".to_string());
        };
        let provider = self.auth.as_ref().and_then(|auth| auth.oidc.as_ref());
        let mapping = who.issuer.as_ref().and(provider).map(|provider| {
            let mapping = &provider.config.mapping;
            pages::ClaimMappingView {
                username_claim: mapping.username_claim.clone(),
                username_prefix: mapping.username_prefix(&provider.config.issuer),
                groups_claim: mapping.groups_claim.clone(),
                groups_prefix: mapping.groups_prefix.clone(),
                required_claims: mapping.required_claims.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            }
        });
        let ends_at =
            jiff::Timestamp::try_from(who.ends_at).map(|at| at.round(jiff::Unit::Second).map(|at| at.to_string()));
        let page = pages::WhoAmIPage {
            user: who.subject.user,
            groups: who.subject.groups,
            issuer: who.issuer,
            mapping,
            ends_at: ends_at.ok().and_then(Result::ok).unwrap_or_default(),
        };
        self.page("whoami.html", &self.chrome(session, Vec::new(), Vec::new()), page)
    }

    /// A sign-in's POST: the token reviewed by the API server, a new session for its user.
    /// Nothing of the token is ever answered, logged or kept but in the session.
    pub(super) async fn sign_in(&self, request: Request<Incoming>, session: &str) -> Answer {
        let Some(auth) = &self.auth else { return Answer::text(StatusCode::NOT_FOUND, "not found\n") };
        let client = self.client_address(auth, &request);
        let form = match self.checked_form(request, session).await {
            Ok(form) => form,
            Err(refused) => return refused,
        };
        let token = form.get("token").map(String::as_str).unwrap_or_default();
        let refused = match auth.sign_in(client, token).await {
            Ok(id) => {
                let name = auth.name_of(&id).unwrap_or_default();
                (self.options.on)(Progress::Status(format!("ui: {name} signed in")));
                let age = auth.session_left(&id);
                return Answer { session: Some((id, Some(age))), ..Answer::see_other("/".to_string()) };
            }
            Err(refused) => refused,
        };
        let status = match refused {
            Refused::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Refused::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        self.refused_page(session, status, refusal_message(refused, &self.options))
    }

    /// A sign-out's POST: the session forgotten here, the browser given a new one.
    pub(super) async fn sign_out(&self, request: Request<Incoming>, session: &str) -> Answer {
        if let Err(refused) = self.checked_form(request, session).await {
            return refused;
        }
        // Signed out at the provider too, where it can be: it sends the browser back to /sign-in.
        let provider_logout = self.auth.as_ref().and_then(|auth| auth.sign_out(session));
        let location = provider_logout.unwrap_or_else(|| "/sign-in".to_string());
        Answer { session: Some((auth::new_id(), None)), ..Answer::see_other(location) }
    }
}

/// What the sign-in page says of a refused sign-in: nothing of the token or of the provider's
/// answer but its OAuth error code.
fn refusal_message(refused: Refused, options: &crate::Options) -> String {
    match refused {
        Refused::TooMany(wait) => {
            format!("too many sign-in attempts from your address: try again in {} s", wait.as_secs().max(1))
        }
        Refused::NotAccepted => {
            "the API server does not accept that token (expired, revoked, or not meant for it)".into()
        }
        Refused::Unavailable(err) | Refused::Oidc(oidc::Refused::Unavailable(err)) => options.redactor.error(&err),
        Refused::Oidc(oidc::Refused::UnknownState) => {
            "this sign-in is unknown, expired or already used (its state): start it again".into()
        }
        Refused::Oidc(oidc::Refused::Provider(code)) => {
            format!("the OIDC provider refused: {}", oauth_error_code(&code))
        }
        Refused::Oidc(oidc::Refused::Invalid(why)) => why,
    }
}

/// An OAuth `error` as shown: its code's characters only (RFC 6749 codes are printable ASCII
/// without quotes or backslashes), at most 64 of them.
fn oauth_error_code(error: &str) -> String {
    error.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\')).take(64).collect()
}
