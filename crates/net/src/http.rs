//! The HTTP(S) client weaver builds for what it fetches (remote charts) and sends
//! (notifications): ureq on rustls with the aws-lc-rs provider, kube's, so that one crypto
//! library is built; webpki's roots unless a CA is given.

use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig};

/// The certificates of a PEM file (a CA bundle) as trust roots; None when it holds none.
pub fn root_certs(pem: &[u8]) -> Option<RootCerts> {
    let certs: Vec<_> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    (!certs.is_empty()).then(|| RootCerts::new_with_certs(&certs))
}

/// A client certificate (PEM: its chain, then its private key) for servers that ask for one in
/// the TLS handshake; None when `certificate` holds no certificate or `key` no private key.
pub fn client_cert(certificate: &[u8], key: &[u8]) -> Option<ClientCert> {
    let chain: Vec<_> = ureq::tls::parse_pem(certificate)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    let key = ureq::tls::parse_pem(key).find_map(|item| match item {
        Ok(PemItem::PrivateKey(key)) => Some(key),
        _ => None,
    })?;
    (!chain.is_empty()).then(|| ClientCert::new_with_certs(&chain, key))
}

/// An agent that returns every HTTP status as a response (the caller says what each means),
/// ends a request after `timeout` and follows at most `max_redirects`.
pub fn agent(roots: Option<RootCerts>, timeout: Duration, max_redirects: u32) -> Agent {
    agent_presenting(roots, None, timeout, max_redirects)
}

/// [`agent`], presenting `client_cert` to a server that asks for one.
pub fn agent_presenting(
    roots: Option<RootCerts>,
    client_cert: Option<ClientCert>,
    timeout: Duration,
    max_redirects: u32,
) -> Agent {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = TlsConfig::builder().unversioned_rustls_crypto_provider(provider);
    if let Some(roots) = roots {
        tls = tls.root_certs(roots);
    }
    if let Some(client_cert) = client_cert {
        tls = tls.client_cert(Some(client_cert));
    }
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(max_redirects)
        .tls_config(tls.build())
        .build()
        .into()
}
