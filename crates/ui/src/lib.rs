//! The web view of the fleet (`weaver ui`): server-rendered pages of the cluster's
//! EnvironmentSyncs and of the local repository's environments, built from the actions the CLI
//! runs (`action::sync`, `action::status`, `action::plan`, `action::drift`, `action::history`),
//! never a copy of the pipeline; and the actions `weaver sync` takes (reconcile, suspend, resume,
//! approve by digest) and `weaver rollback`, each confirmed on a page of its own. `pages.rs` builds the page models and renders them
//! (minijinja, auto-escaped, templates and CSS embedded in the binary); `view.rs` reads an
//! environment's page, the cluster once for its plan, health and drift; `http/` serves them:
//! routes, the session cookie and CSRF tokens, the security headers.
//!
//! `weaver ui` serves on loopback only, as the kubeconfig's identity: whoever may reach the port
//! acts as that identity, so the port is the machine's own, its Host header is checked (a page
//! of another site cannot rebind a name to it), and every action needs the session's CSRF token.
//!
//! The controller (`weaver operator run --ui-address`) serves the same pages of its
//! EnvironmentSyncs to users who sign in (`auth.rs`): each sees and does only what the cluster's
//! RBAC lets them, and pages read the controller's watch, not the API server.

mod auth;
mod http;
mod oidc;
mod pages;
pub use weaver_controllers::proxy;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use weaver_cluster::ConnectOptions;
use weaver_core::error::{Error, Result};
use weaver_engine::action::{Keys, Progress};
use weaver_secrets::Redactor;

pub use http::serve;
pub use oidc::{ClaimMapping, OidcConfig};

/// What `weaver ui` serves, and as whom.
#[derive(Clone)]
pub struct Options {
    /// The local repository, whose environments are planned against the live cluster.
    pub repo: PathBuf,
    /// The kubeconfig's identity: every page and action is that identity's.
    pub connect: ConnectOptions,
    /// Where EnvironmentSyncs are listed: None for every namespace.
    pub namespace: Option<String>,
    /// The age identities the plans decrypt with.
    pub keys: Keys,
    /// Requests in flight at once, per page; environment pages share theirs, and their
    /// connections, between views.
    pub concurrency: usize,
    /// How a rollback from the pages applies: as `weaver rollback` without flags.
    pub rollback: weaver_engine::action::apply::Settings,
    /// Every decrypted value is registered here; every response passes through it.
    pub redactor: Redactor,
    /// Where the actions taken are told (`Progress::Status`), as the CLI tells its own.
    pub on: Arc<dyn Fn(Progress<'_>) + Send + Sync>,
    /// The controller's UI: users sign in, and act through `connect` (the controller's own
    /// identity) once the API server says they may. None for `weaver ui`.
    pub sign_in: Option<SignIn>,
    /// What one peer may cost the server: connections, header and body times and sizes.
    pub http_limits: weaver_controllers::http::Limits,
}

/// What the controller's UI needs of the controller.
#[derive(Clone)]
pub struct SignIn {
    /// The controller's client, which asks the TokenReviews and SubjectAccessReviews.
    pub client: kube::Client,
    /// The EnvironmentSyncs the pages show.
    pub syncs: weaver_cluster::SyncCache,
    /// What the EnvironmentSync controller's reconciles share (the git cache, the tenants'
    /// tokens): an environment's pages read what its EnvironmentSync applied through them.
    pub gitops: Option<Arc<weaver_controllers::gitops::reconcile::Shared>>,
    /// The proxies in front (an Ingress controller) whose `X-Forwarded-For` names the client
    /// the sign-in rate limit counts; from any other peer, the peer is the client.
    pub trusted_proxies: Vec<proxy::Cidr>,
    /// How often a session's token is reviewed again: a token revoked (its ServiceAccount
    /// deleted, its OIDC session ended) signs its user out within this.
    pub review_every: std::time::Duration,
    /// How long a session lasts at most after sign-in, however it is kept alive.
    pub max_age: std::time::Duration,
    /// The OIDC provider users may sign in at, besides tokens; None: tokens only.
    pub oidc: Option<OidcConfig>,
}

/// The address `weaver ui` may listen on: a loopback one, `--address` named when it is not.
pub fn loopback(address: SocketAddr) -> Result<SocketAddr> {
    if address.ip().is_loopback() {
        return Ok(address);
    }
    Err(Error::new(format!("--address {address} is not a loopback address"))
        .with_help("weaver ui acts as your kubeconfig's identity: it serves this machine only (127.0.0.1 or ::1)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        assert!(loopback("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(loopback("[::1]:8080".parse().unwrap()).is_ok());
        let err = loopback("0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("--address 0.0.0.0:8080"), "{err}");
    }
}
