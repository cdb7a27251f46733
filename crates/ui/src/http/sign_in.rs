//! Signing in with a token, and out.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use weaver_engine::action::Progress;

use super::{Answer, Server};
use crate::auth::{self, Refused};

impl Server {
    /// The sign-in page: a token to paste, and what it is.
    pub(super) fn sign_in_page(&self, session: &str, errors: Vec<String>) -> Answer {
        self.page("sign_in.html", &self.chrome(session, errors, Vec::new()), ())
    }

    /// A sign-in's POST: the token reviewed by the API server, a new session for its user.
    /// Nothing of the token is ever answered, logged or kept but in the session.
    pub(super) async fn sign_in(&self, request: Request<Incoming>, session: &str) -> Answer {
        let Some(auth) = &self.auth else { return Answer::text(StatusCode::NOT_FOUND, "not found\n") };
        let peer = request.extensions().get::<std::net::SocketAddr>().map(|peer| peer.ip());
        let peer = peer.unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        let client = crate::proxy::client_address(peer, request.headers(), &auth.trusted_proxies);
        let form = match self.checked_form(request, session).await {
            Ok(form) => form,
            Err(refused) => return refused,
        };
        let token = form.get("token").map(String::as_str).unwrap_or_default();
        let refused = match auth.sign_in(client, token).await {
            Ok(id) => {
                let name = auth.name_of(&id).unwrap_or_default();
                (self.options.on)(Progress::Status(format!("ui: {name} signed in")));
                return Answer { session: Some((id, Some(auth::SESSION_AGE))), ..Answer::see_other("/".to_string()) };
            }
            Err(refused) => refused,
        };
        let (status, message) = match refused {
            Refused::TooMany(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many sign-in attempts from your address: try again in {} s", wait.as_secs().max(1)),
            ),
            Refused::NotAccepted => (
                StatusCode::UNAUTHORIZED,
                "the API server does not accept that token (expired, revoked, or not meant for it)".to_string(),
            ),
            Refused::Unavailable(err) => (StatusCode::SERVICE_UNAVAILABLE, self.options.redactor.error(&err)),
        };
        Answer { status, ..self.sign_in_page(session, vec![message]) }
    }

    /// A sign-out's POST: the session forgotten here, the browser given a new one.
    pub(super) async fn sign_out(&self, request: Request<Incoming>, session: &str) -> Answer {
        if let Err(refused) = self.checked_form(request, session).await {
            return refused;
        }
        if let Some(auth) = &self.auth {
            auth.sign_out(session);
        }
        Answer { session: Some((auth::new_id(), None)), ..Answer::see_other("/sign-in".to_string()) }
    }
}
