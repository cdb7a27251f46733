//! What a reconcile acts as and with: the client of the EnvironmentSync's ServiceAccount, the
//! Secrets it names (the source's credentials and CA, the decryption keys, a kubeconfig), the
//! fetch they make and the reasons a fetch fails with.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use secrecy::SecretString;

use super::{LOCK_TIMEOUT, Shared};
use crate::gitops::api::{EnvironmentSync, Reason, RefKind};
use crate::gitops::plan::Settings as Spec;
use crate::tenant::TenantError;
use weaver_cluster::{ClusterInfo, GivenCluster};
use weaver_engine::action::Keys;
use weaver_secrets::Redactor;
use weaver_source::{Credentials, FetchFailure, FetchRequest, GitRef};

/// A Secret of `namespace`, read with `client` (the EnvironmentSync's account; the webhook
/// receiver's own); `what` names its use.
pub(crate) async fn secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
) -> Result<Secret, (Reason, String)> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match secrets.get_opt(name).await {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => {
            Err((Reason::SecretNotFound, format!("Secret {namespace}/{name} ({what}) does not exist; create it")))
        }
        Err(kube::Error::Api(status)) if status.code == 403 => Err((
            Reason::SecretUnreadable,
            format!("the ServiceAccount may not read Secret {namespace}/{name} ({what}): grant it get on that Secret"),
        )),
        Err(err) => Err((
            Reason::SecretUnreadable,
            format!("cannot read Secret {namespace}/{name} ({what}): {}", weaver_cluster::api_message(&err)),
        )),
    }
}

/// The value of `key` in `secret`, as text.
pub(crate) fn value(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref()?.get(key)?;
    String::from_utf8(data.0.clone()).ok()
}

/// The fetch of `sync`'s source, with its credentials and CA.
pub(crate) async fn fetch_request(
    sync: &EnvironmentSync,
    namespace: &str,
    spec: &Spec,
    client: &kube::Client,
) -> Result<FetchRequest, (Reason, String)> {
    let source = &sync.spec.source;
    let credentials = match &source.secret_ref {
        None => Credentials::None,
        Some(reference) => {
            let secret = secret(client, namespace, &reference.name, "spec.source.secretRef").await?;
            let name = format!("Secret {namespace}/{}", reference.name);
            Credentials::from_secret(|key: &str| value(&secret, key), &name)
                .map_err(|why| (Reason::SecretInvalid, why))?
        }
    };
    let ca_pem = match &source.ca_secret_ref {
        None => None,
        Some(reference) => {
            let secret = secret(client, namespace, &reference.name, "spec.source.caSecretRef").await?;
            let pem = value(&secret, "ca.crt").ok_or((
                Reason::SecretInvalid,
                format!("Secret {namespace}/{} (spec.source.caSecretRef) has no `ca.crt`", reference.name),
            ))?;
            Some(pem.into_bytes())
        }
    };
    let (kind, value) = &spec.reference;
    let reference = match kind {
        RefKind::Branch => GitRef::Branch(value.clone()),
        RefKind::Tag => GitRef::Tag(value.clone()),
        RefKind::Semver => GitRef::Semver(value.clone()),
        RefKind::Commit => GitRef::Commit(value.clone()),
    };
    Ok(FetchRequest { url: source.url.clone(), reference, credentials, ca_pem, timeout: spec.timeout })
}

/// The Ready condition's reason for a failed fetch.
pub(crate) fn fetch_reason(failure: FetchFailure) -> Reason {
    match failure {
        FetchFailure::Unreachable => Reason::GitUnreachable,
        FetchFailure::AuthenticationFailed => Reason::GitAuthenticationFailed,
        FetchFailure::RefNotFound => Reason::GitRefNotFound,
        FetchFailure::HostKeyMismatch => Reason::GitHostKeyMismatch,
        FetchFailure::InvalidUrl => Reason::InvalidSourceUrl,
        FetchFailure::TooLarge => Reason::GitFetchTooLarge,
        FetchFailure::TimedOut => Reason::GitFetchTimedOut,
        FetchFailure::PushRejected => Reason::GitPushRejected,
        FetchFailure::Other => Reason::GitFetchFailed,
    }
}

/// A failed fetch's message, naming the Secret the credentials came from when the failure is
/// theirs (the source module knows the values, not where they were read).
pub(crate) fn with_secret(err: &weaver_source::FetchError, sync: &EnvironmentSync, namespace: &str) -> String {
    let theirs = matches!(err.failure, FetchFailure::AuthenticationFailed | FetchFailure::HostKeyMismatch);
    match sync.spec.source.secret_ref.as_ref().filter(|_| theirs) {
        Some(secret) => format!("{} (Secret {namespace}/{}, spec.source.secretRef)", err.message, secret.name),
        None => err.message.clone(),
    }
}

/// A client acting as the EnvironmentSync's account.
pub(crate) async fn tenant_client(
    namespace: &str,
    spec: &Spec,
    shared: &Shared,
) -> Result<kube::Client, (Reason, String)> {
    shared.tenants.client(namespace, &spec.account).await.map_err(tenant_failure)
}

fn tenant_failure(err: TenantError) -> (Reason, String) {
    match err {
        TenantError::ServiceAccountNotFound(account) => (
            Reason::ServiceAccountNotFound,
            format!("ServiceAccount {account} does not exist; create it, or name another in spec.serviceAccountName"),
        ),
        other => (Reason::TokenRequestFailed, other.to_string()),
    }
}

/// The cluster `sync` applies to, as whom: its own cluster as its ServiceAccount, or the
/// cluster of its `kubeConfig` Secret.
pub(crate) async fn cluster_for(
    sync: &EnvironmentSync,
    namespace: &str,
    spec: &Spec,
    shared: &Shared,
    tenant: &kube::Client,
    environments: usize,
) -> Result<GivenCluster, (Reason, String)> {
    if let Some(kube_config) = &sync.spec.kube_config {
        let name = &kube_config.secret_ref.name;
        let secret = secret(tenant, namespace, name, "spec.kubeConfig.secretRef").await?;
        let described = format!("the kubeconfig of Secret {namespace}/{name}");
        let text = value(&secret, "value").or_else(|| value(&secret, "value.yaml")).ok_or((
            Reason::SecretInvalid,
            format!("Secret {namespace}/{name} (spec.kubeConfig.secretRef) has no `value` (or `value.yaml`) key"),
        ))?;
        return weaver_cluster::given_kubeconfig(&text, &described)
            .map_err(|err| (Reason::KubeConfigInvalid, Redactor::new().error(&err)));
    }
    // One token serves every environment's apply: each may wait for its lock and its timeout.
    let environments = u32::try_from(environments.max(1)).unwrap_or(u32::MAX);
    let at_least = (spec.timeout + LOCK_TIMEOUT).saturating_mul(environments) + Duration::from_secs(60);
    let config = shared.tenants.config(namespace, &spec.account, at_least).await.map_err(tenant_failure)?;
    let info = ClusterInfo { context: account_identity(namespace, spec), ..shared.info.clone() };
    // Its requests spend the controller's budget, as every tenant's do.
    let rate = shared.tenants.rate().cloned();
    Ok(GivenCluster::Config { config, info, rate, live: Some(shared.live.clone()) })
}

/// Who an EnvironmentSync of `namespace` applies as in the controller's cluster, as its
/// connection (and the watches of live state) name it.
pub(crate) fn account_identity(namespace: &str, spec: &Spec) -> String {
    format!("ServiceAccount {namespace}/{}", spec.account)
}

/// The age identities of `spec.decryption`, or none.
pub(crate) async fn keys_for(
    sync: &EnvironmentSync,
    namespace: &str,
    client: &kube::Client,
) -> Result<Keys, (Reason, String)> {
    let Some(decryption) = &sync.spec.decryption else {
        return Ok(Keys::Given {
            origin: "no spec.decryption".into(),
            identities: Arc::new(SecretString::from(String::new())),
        });
    };
    let name = &decryption.secret_ref.name;
    let secret = secret(client, namespace, name, "spec.decryption.secretRef").await?;
    // Every value may hold identities, one a line, as an age identity file.
    let text: Vec<String> =
        secret.data.iter().flatten().filter_map(|(_, value)| String::from_utf8(value.0.clone()).ok()).collect();
    Ok(Keys::Given {
        origin: format!("Secret {namespace}/{name}"),
        identities: Arc::new(SecretString::from(text.join("\n"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fetch_failure_is_written_as_the_reason_the_crd_enumerates() {
        use weaver_source::FetchFailure::*;
        for (failure, reason) in [
            (Unreachable, "GitUnreachable"),
            (AuthenticationFailed, "GitAuthenticationFailed"),
            (RefNotFound, "GitRefNotFound"),
            (HostKeyMismatch, "GitHostKeyMismatch"),
            (InvalidUrl, "InvalidSourceUrl"),
            (TooLarge, "GitFetchTooLarge"),
            (TimedOut, "GitFetchTimedOut"),
            (PushRejected, "GitPushRejected"),
            (Other, "GitFetchFailed"),
        ] {
            // The CRD enumerates history results by these strings: another would be refused.
            assert_eq!(fetch_reason(failure).as_str(), reason);
        }
    }
}
