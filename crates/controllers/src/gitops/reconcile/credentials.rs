//! What a reconcile acts as and with: the client of the EnvironmentSync's ServiceAccount, the
//! Secrets it names (the source's credentials and CA, the decryption keys, a kubeconfig, the
//! remote charts' credentials), the fetch they make and the reasons a fetch fails with.

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
use weaver_source::charts::http::{Credentials as ChartCredentials, Machine};
use weaver_source::charts::pulls::{Puller, Pulls};
use weaver_source::charts::registry_login::HeldConfig;
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

/// The docker config of `secret` (`.dockerconfigjson`, as `kubectl create secret
/// docker-registry` writes it), named `what` (`Secret team/regcred (its field)`) in errors,
/// which never quote it; None when it has none.
pub(crate) fn docker_config(secret: &Secret, what: &str) -> Option<Result<HeldConfig, (Reason, String)>> {
    let data = secret.data.as_ref()?.get(".dockerconfigjson")?;
    Some(HeldConfig::parse(what, &data.0).map_err(|err| (Reason::SecretInvalid, err.to_string())))
}

/// The remote charts of one reconcile of `sync`, pulled with the credentials of the Secrets
/// its `spec.chartCredentials` names (read with `client`, its account), each value registered
/// with `redactor`; anonymously without them.
pub(crate) async fn chart_pulls(
    sync: &EnvironmentSync,
    namespace: &str,
    client: &kube::Client,
    shared: &Shared,
    redactor: &Redactor,
) -> Result<Pulls, (Reason, String)> {
    use sha2::Digest;
    if sync.spec.chart_credentials.is_empty() {
        return Ok(Pulls::new(shared.charts.clone()));
    }
    let (mut entries, mut configs) = (Vec::new(), Vec::new());
    let mut fingerprint = sha2::Sha256::new();
    for (i, given) in sync.spec.chart_credentials.iter().enumerate() {
        let name = &given.secret_ref.name;
        let field = format!("spec.chartCredentials[{i}]");
        let secret = secret(client, namespace, name, &field).await?;
        let what = format!("Secret {namespace}/{name} ({field})");
        // The same values for other URLs are other credentials: they may not read its archives.
        fingerprint.update(format!("{i} {:?}\n", given.url));
        for (key, value) in secret.data.iter().flatten() {
            fingerprint.update(format!("{i} {key} {}\n", value.0.len()));
            fingerprint.update(&value.0);
            if key != "username" && key != "ca.crt" && key != "tls.crt" {
                redactor.register(&String::from_utf8_lossy(&value.0));
            }
        }
        let config = docker_config(&secret, &what).transpose()?;
        // The config's own values (its passwords, its `auth`s and what they decode to), whatever
        // registry they are for: the Secret's whole text above is not them.
        for value in config.iter().flat_map(HeldConfig::secret_values) {
            redactor.register(&value);
        }
        let Some(url) = &given.url else {
            match config {
                Some(config) => configs.push(config),
                None => {
                    return Err((
                        Reason::SecretInvalid,
                        format!(
                            "{what} has no `.dockerconfigjson`: an entry without `url` names a docker config, whose `auths` name the registries; give `url` for other credentials"
                        ),
                    ));
                }
            }
            continue;
        };
        let mut entry = ChartCredentials::given(url.clone(), what.clone());
        entry.username = value(&secret, "username");
        entry.password = value(&secret, "password");
        entry.bearer_token = value(&secret, "bearerToken");
        entry.ca_pem = value(&secret, "ca.crt").map(String::into_bytes);
        if let Some(config) = config {
            let host = weaver_source::charts::registry_login::registry_host(url);
            let login = config.login(host).map_err(|err| (Reason::SecretInvalid, err.to_string()))?;
            let Some(login) = login else {
                return Err((
                    Reason::SecretInvalid,
                    format!("{what}: its `.dockerconfigjson` has no login for {host}, the host of its `url`"),
                ));
            };
            (entry.username, entry.password) = (Some(login.username), Some(login.password));
        }
        entry.client_certificate = match (value(&secret, "tls.crt"), value(&secret, "tls.key")) {
            (Some(certificate), Some(key)) => Some((certificate.into_bytes(), key.into_bytes())),
            (None, None) => None,
            _ => {
                return Err((
                    Reason::SecretInvalid,
                    format!("{what} has one of `tls.crt` and `tls.key`: a client certificate needs both"),
                ));
            }
        };
        let gives = entry.username.is_some() || entry.bearer_token.is_some();
        if !gives && entry.ca_pem.is_none() && entry.client_certificate.is_none() {
            return Err((
                Reason::SecretInvalid,
                format!(
                    "{what} has none of `username` and `password`, `bearerToken`, `.dockerconfigjson`, `ca.crt`, `tls.crt` and `tls.key`"
                ),
            ));
        }
        entries.push(entry);
    }
    let puller = Puller::with_credentials(Machine::in_cluster(entries, configs), fingerprint.finalize().to_vec());
    Ok(Pulls::with(shared.charts.clone(), puller))
}

/// The fetch of `sync`'s git source at `(kind, revision)`, with its credentials and CA.
pub(crate) async fn fetch_request(
    sync: &EnvironmentSync,
    namespace: &str,
    (kind, revision): (&RefKind, &str),
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
    let revision = revision.to_string();
    let reference = match kind {
        RefKind::Branch => GitRef::Branch(revision),
        RefKind::Tag => GitRef::Tag(revision),
        RefKind::Semver => GitRef::Semver(revision),
        RefKind::Commit => GitRef::Commit(revision),
    };
    Ok(FetchRequest {
        url: source.url.clone().unwrap_or_default(),
        reference,
        credentials,
        credential_names: Default::default(),
        ca_pem,
        timeout: spec.timeout,
    })
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
        // Live state from watches of that cluster, as of this one: one cache per Secret.
        let live = remote_cluster(sync, namespace).map(|remote| shared.live.of_another_cluster(&remote, &text));
        return weaver_cluster::given_kubeconfig(&text, &described, live)
            .map_err(|err| (Reason::KubeConfigInvalid, Redactor::new().error(&err)));
    }
    // One token serves every environment's apply: each may wait for its lock and its timeout.
    let environments = u32::try_from(environments.max(1)).unwrap_or(u32::MAX);
    let at_least = (spec.timeout + LOCK_TIMEOUT).saturating_mul(environments) + Duration::from_secs(60);
    let config = shared.tenants.config(namespace, &spec.account, at_least).await.map_err(tenant_failure)?;
    let info = ClusterInfo { context: account_identity(namespace, spec), ..shared.info.clone() };
    // Its requests spend the controller's budget, as every tenant's do.
    let rate = shared.tenants.rate().cloned();
    Ok(GivenCluster::Config { config: Box::new(config), info, rate, live: Some(shared.live.clone()) })
}

/// The other cluster `sync` (of `namespace`) applies to, as the cache of live state names it:
/// its `kubeConfig` Secret, `namespace/name`; None for the controller's own cluster.
pub(crate) fn remote_cluster(sync: &EnvironmentSync, namespace: &str) -> Option<String> {
    sync.spec.kube_config.as_ref().map(|kube_config| format!("{namespace}/{}", kube_config.secret_ref.name))
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
    use k8s_openapi::api::core::v1::ServiceAccount;
    use serde_json::json;
    use weaver_test_support::git_http::Options;

    use super::*;
    use crate::gitops::testing::{Fixture, NAMESPACE, condition};

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

    const PASSWORD: &str = "s3cret-Pa55word-for-git";
    const WRONG: &str = "not-the-Pa55word";

    /// Secret `name` of the tests' namespace with the source's username and `password`.
    async fn credentials(fixture: &Fixture, name: &str, password: &str) {
        let secret = json!({"metadata": {"name": name, "namespace": NAMESPACE},
                            "stringData": {"username": "deploy", "password": password}});
        fixture.create::<Secret>(secret).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_source_is_fetched_with_the_named_secret_and_a_wrong_or_missing_one_is_named_never_shown() {
        let options = Options { basic: Some(("deploy".into(), PASSWORD.into())), ..Options::default() };
        let Some(fixture) = Fixture::serving(options).await else { return };
        let commit = fixture.source.commit("first");
        credentials(&fixture, "good", PASSWORD).await;
        credentials(&fixture, "wrong", WRONG).await;
        let url = fixture.source.url();
        let from =
            |secret: &str| json!({"source": {"url": url, "ref": {"branch": "main"}, "secretRef": {"name": secret}}});
        for name in ["good", "wrong", "absent"] {
            fixture.create_sync(name, from(name)).await;
        }

        let good = fixture.reconcile("good").await;
        assert_eq!(condition(&good, "Ready").map(|c| c.1), Some(Reason::ReconciliationSucceeded.as_str().into()));
        assert_eq!(good.status.as_ref().and_then(|s| s.last_applied_revision.as_deref()), Some(commit.as_str()));

        // Only another Secret helps: Stalled, naming the Secret the credentials came from.
        let wrong = fixture.reconcile("wrong").await;
        let (status, reason, message) = condition(&wrong, "Ready").expect("a Ready condition");
        assert_eq!((status.as_str(), reason.as_str()), ("False", Reason::GitAuthenticationFailed.as_str()));
        assert!(message.ends_with("(Secret app/wrong, spec.source.secretRef)"), "{message}");
        assert_eq!(condition(&wrong, "Stalled").map(|c| c.1), Some(reason));

        // Created later, it is read then: retried, not stalled.
        let absent = fixture.reconcile("absent").await;
        let message = "Secret app/absent (spec.source.secretRef) does not exist; create it";
        assert_eq!(
            condition(&absent, "Ready"),
            Some(("False".into(), Reason::SecretNotFound.as_str().into(), message.into()))
        );
        assert_eq!(condition(&absent, "Stalled"), None);
        assert_eq!(condition(&absent, "Reconciling").map(|c| c.0), Some("True".into()));

        let mut seen = Vec::new();
        for name in ["good", "wrong", "absent"] {
            seen.push(serde_json::to_string(&fixture.sync(name).await).expect("JSON"));
            seen.extend(fixture.events(name).await);
        }
        let seen = seen.join("\n");
        assert!(seen.contains("GitAuthenticationFailed"), "the statuses and Events were read: {seen}");
        assert!(!seen.contains(PASSWORD) && !seen.contains(WRONG), "a password reached a status or an Event: {seen}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_secret_the_account_may_not_read_is_not_read_for_it_by_the_controller() {
        let Some(fixture) = Fixture::start().await else { return };
        fixture.source.commit("first");
        // An account that may read no Secret; the controller could read this one.
        fixture.create::<ServiceAccount>(json!({"metadata": {"name": "limited", "namespace": NAMESPACE}})).await;
        credentials(&fixture, "platform-git", PASSWORD).await;
        let source =
            json!({"url": fixture.source.url(), "ref": {"branch": "main"}, "secretRef": {"name": "platform-git"}});
        fixture.create_sync("borrowed", json!({"serviceAccountName": "limited", "source": source})).await;
        fixture.requests();

        let sync = fixture.reconcile("borrowed").await;
        let message = "the ServiceAccount may not read Secret app/platform-git (spec.source.secretRef): grant it \
                       get on that Secret";
        assert_eq!(
            condition(&sync, "Ready"),
            Some(("False".into(), Reason::SecretUnreadable.as_str().into(), message.into()))
        );
        let reads: Vec<String> =
            fixture.requests().into_iter().filter(|r| r.contains("/secrets/platform-git")).collect();
        assert_eq!(
            reads,
            ["GET /api/v1/namespaces/app/secrets/platform-git by system:serviceaccount:app:limited: 403"]
        );
        // Nothing was fetched with credentials it could not read.
        assert_eq!(fixture.source.requests(), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn chart_credentials_secrets_are_named_by_their_entry_when_missing_or_unusable_never_shown() {
        let Some(fixture) = Fixture::start().await else { return };
        fixture.source.commit("first");
        let secrets = [
            ("basic", json!({"username": "reader", "password": PASSWORD})),
            ("half-cert", json!({"tls.crt": "-----BEGIN CERTIFICATE-----", "password": PASSWORD})),
            ("nothing", json!({"other": PASSWORD})),
            (
                "other-registry",
                json!({".dockerconfigjson": format!(
                    r#"{{"auths": {{"elsewhere.example": {{"username": "robot", "password": "{PASSWORD}"}}}}}}"#
                )}),
            ),
        ];
        for (name, data) in secrets {
            let secret = json!({"metadata": {"name": name, "namespace": NAMESPACE}, "stringData": data});
            fixture.create::<Secret>(secret).await;
        }
        let url = "https://charts.example";
        let cases = [
            (
                "absent",
                json!([{"url": url, "secretRef": {"name": "basic"}}, {"url": url, "secretRef": {"name": "absent"}}]),
                Reason::SecretNotFound,
                "Secret app/absent (spec.chartCredentials[1]) does not exist; create it".to_string(),
            ),
            (
                "no-url",
                json!([{"secretRef": {"name": "basic"}}]),
                Reason::SecretInvalid,
                "Secret app/basic (spec.chartCredentials[0]) has no `.dockerconfigjson`: an entry without `url` names a docker config, whose `auths` name the registries; give `url` for other credentials".to_string(),
            ),
            (
                "half-cert",
                json!([{"url": url, "secretRef": {"name": "half-cert"}}]),
                Reason::SecretInvalid,
                "Secret app/half-cert (spec.chartCredentials[0]) has one of `tls.crt` and `tls.key`: a client certificate needs both".to_string(),
            ),
            (
                "nothing",
                json!([{"url": url, "secretRef": {"name": "nothing"}}]),
                Reason::SecretInvalid,
                "Secret app/nothing (spec.chartCredentials[0]) has none of `username` and `password`, `bearerToken`, `.dockerconfigjson`, `ca.crt`, `tls.crt` and `tls.key`".to_string(),
            ),
            (
                "other-registry",
                json!([{"url": "oci://registry.example/charts", "secretRef": {"name": "other-registry"}}]),
                Reason::SecretInvalid,
                "Secret app/other-registry (spec.chartCredentials[0]): its `.dockerconfigjson` has no login for registry.example, the host of its `url`".to_string(),
            ),
        ];
        let mut seen = Vec::new();
        for (name, given, reason, message) in cases {
            fixture.create_sync(name, json!({"chartCredentials": given})).await;
            let sync = fixture.reconcile(name).await;
            assert_eq!(condition(&sync, "Ready"), Some(("False".into(), reason.as_str().into(), message)), "{name}");
            seen.push(serde_json::to_string(&sync).expect("JSON"));
            seen.extend(fixture.events(name).await);
        }
        let seen = seen.join("\n");
        assert!(!seen.contains(PASSWORD), "a password reached a status or an Event: {seen}");
        assert_eq!(fixture.config_map(NAMESPACE, "app").await, None, "applied without its chart credentials");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_decryption_and_kubeconfig_secrets_are_named_by_their_field_when_missing_or_incomplete() {
        let Some(fixture) = Fixture::start().await else { return };
        let commit = fixture.source.commit("first");
        let unusable = json!({"metadata": {"name": "unusable", "namespace": NAMESPACE}, "stringData": {"other": "x"}});
        fixture.create::<Secret>(unusable).await;
        let cases = [
            (
                "keys",
                json!({"decryption": {"secretRef": {"name": "keys"}}}),
                Reason::SecretNotFound,
                "Secret app/keys (spec.decryption.secretRef) does not exist; create it",
            ),
            (
                "remote",
                json!({"kubeConfig": {"secretRef": {"name": "remote"}}}),
                Reason::SecretNotFound,
                "Secret app/remote (spec.kubeConfig.secretRef) does not exist; create it",
            ),
            (
                "unusable",
                json!({"kubeConfig": {"secretRef": {"name": "unusable"}}}),
                Reason::SecretInvalid,
                "Secret app/unusable (spec.kubeConfig.secretRef) has no `value` (or `value.yaml`) key",
            ),
        ];
        for (name, fields, reason, message) in cases {
            fixture.create_sync(name, fields).await;
            let sync = fixture.reconcile(name).await;
            assert_eq!(
                condition(&sync, "Ready"),
                Some(("False".into(), reason.as_str().into(), message.into())),
                "{name}"
            );
            // Read after the fetch: the commit that was not applied is named.
            let status = sync.status.expect("a status");
            assert_eq!(status.last_attempted_revision.as_deref(), Some(commit.as_str()), "{name}");
            assert_eq!(status.last_applied_revision, None, "{name}");
        }
        assert_eq!(fixture.config_map(NAMESPACE, "app").await, None, "applied without its Secret");
    }
}
