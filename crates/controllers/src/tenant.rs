//! Acting as the tenant: a short-lived token for the ServiceAccount a ConfigMapSync or an
//! EnvironmentSync names, from the TokenRequest API, and a client that authenticates with
//! nothing but that token. Tokens are cached per ServiceAccount and replaced well before they
//! expire, or as soon as the API server refuses one (401: the account was deleted and made
//! again, or the token revoked).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::AuthInfo;
use tokio::sync::Mutex;

/// How long a requested token lives: the API server's default for a TokenRequest, and what the
/// kubelet gives pods. A renewal starts the live cache's watches again (one LIST each), so a
/// short life would LIST every few intervals.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// A cached token is replaced once this much of its life has passed (80 %, as the kubelet).
const REFRESH_AFTER: Duration = Duration::from_secs(2880);

/// Why no tenant client could be made.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("ServiceAccount {0} does not exist")]
    ServiceAccountNotFound(String),
    #[error("cannot request a token for ServiceAccount {account}: {source}")]
    TokenRequest {
        account: String,
        #[source]
        source: kube::Error,
    },
    #[error("the API server answered the token request for ServiceAccount {0} without a token")]
    NoToken(String),
    #[error("cannot build a client for ServiceAccount {account}: {source}")]
    Client {
        account: String,
        #[source]
        source: kube::Error,
    },
}

#[derive(Clone)]
struct Cached {
    config: kube::Config,
    client: kube::Client,
    issued: tokio::time::Instant,
    /// How long the token was asked to live.
    lifetime: Duration,
    /// Set when the API server answered a request of `client` with 401.
    refused: Refused,
}

/// A layer that notes a 401 answer to any request of the client it is part of.
#[derive(Clone, Default)]
struct Refused(Arc<AtomicBool>);

impl Refused {
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<S> tower::Layer<S> for Refused {
    type Service = NotingRefusals<S>;

    fn layer(&self, inner: S) -> NotingRefusals<S> {
        NotingRefusals { inner, refused: self.clone() }
    }
}

struct NotingRefusals<S> {
    inner: S,
    refused: Refused,
}

/// An answer whose HTTP status can be looked at, whatever its body.
trait Answered {
    fn status_code(&self) -> hyper::StatusCode;
}

impl<B> Answered for hyper::Response<B> {
    fn status_code(&self) -> hyper::StatusCode {
        self.status()
    }
}

impl<S, R> tower::Service<R> for NotingRefusals<S>
where
    S: tower::Service<R>,
    S::Response: Answered,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let answer = self.inner.call(request);
        let refused = self.refused.clone();
        Box::pin(async move {
            let response = answer.await?;
            if response.status_code() == hyper::StatusCode::UNAUTHORIZED {
                refused.0.store(true, Ordering::Relaxed);
            }
            Ok(response)
        })
    }
}

/// Tenant clients by (namespace, ServiceAccount).
pub struct Tenants {
    operator: kube::Client,
    /// The operator's own connection settings: the server and its CA are kept, the credentials
    /// are replaced by the tenant's token.
    base: kube::Config,
    /// The operator's request budget, which tenants' requests spend too.
    rate: Option<weaver_cluster::RequestRate>,
    cache: Mutex<HashMap<(String, String), Cached>>,
}

impl Tenants {
    pub fn new(operator: kube::Client, base: kube::Config, rate: Option<weaver_cluster::RequestRate>) -> Self {
        Tenants { operator, base, rate, cache: Mutex::new(HashMap::new()) }
    }

    /// The operator's request budget, for the clients a caller builds from [`Tenants::config`].
    pub fn rate(&self) -> Option<&weaver_cluster::RequestRate> {
        self.rate.as_ref()
    }

    /// A client acting as ServiceAccount `name` of `namespace`.
    pub async fn client(&self, namespace: &str, name: &str) -> Result<kube::Client, TenantError> {
        Ok(self.cached(namespace, name, Duration::ZERO).await?.client)
    }

    /// The connection settings of [`Tenants::client`], for a caller that builds its own client
    /// (an EnvironmentSync's apply), with a token that lives `at_least` this long more: an apply
    /// that waits for a lock and for readiness must not see it expire half-way.
    pub async fn config(&self, namespace: &str, name: &str, at_least: Duration) -> Result<kube::Config, TenantError> {
        Ok(self.cached(namespace, name, at_least).await?.config)
    }

    async fn cached(&self, namespace: &str, name: &str, at_least: Duration) -> Result<Cached, TenantError> {
        let key = (namespace.to_string(), name.to_string());
        if let Some(cached) = self.cache.lock().await.get(&key)
            && !cached.refused.is_set()
            && cached.issued.elapsed() < REFRESH_AFTER
            && cached.lifetime.saturating_sub(cached.issued.elapsed()) >= at_least
        {
            return Ok(cached.clone());
        }
        // What is left to live after the refresh point covers the longest wait asked for.
        let lifetime = TOKEN_LIFETIME.max(at_least + (TOKEN_LIFETIME - REFRESH_AFTER));
        let account = format!("{namespace}/{name}");
        let accounts: Api<ServiceAccount> = Api::namespaced(self.operator.clone(), namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                // None: the API server's own audiences, so the token is good for its API.
                audiences: None,
                expiration_seconds: Some(lifetime.as_secs() as i64),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let issued = tokio::time::Instant::now();
        let answer: TokenRequest = accounts
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .map_err(|source| match &source {
            kube::Error::Api(status) if status.code == 404 => TenantError::ServiceAccountNotFound(account.clone()),
            _ => TenantError::TokenRequest { account: account.clone(), source },
        })?;
        let token = answer.status.and_then(|s| s.token).filter(|token| !token.is_empty());
        let token = token.ok_or_else(|| TenantError::NoToken(account.clone()))?;
        let mut config = self.base.clone();
        config.auth_info = AuthInfo { token: Some(token.into()), ..AuthInfo::default() };
        let refused = Refused::default();
        let builder = kube::client::ClientBuilder::try_from(config.clone())
            .map_err(|source| TenantError::Client { account: account.clone(), source })?;
        let client = match &self.rate {
            Some(rate) => builder.with_layer(rate).with_layer(&refused).build(),
            None => builder.with_layer(&refused).build(),
        };
        let cached = Cached { config, client, issued, lifetime, refused };
        self.cache.lock().await.insert(key, cached.clone());
        Ok(cached)
    }
}
