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

/// The target of the `rel="next"` link of a `Link` header's value (RFC 8288: any case, among
/// other relations), if it has one, as written (a relative one is the caller's to resolve).
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        let next = params.split(';').any(|param| {
            param.trim().split_once('=').is_some_and(|(key, value)| {
                key.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
        });
        next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others_in_any_case() {
        assert_eq!(
            next_link(r#"<https://a/x?p=1>; rel=prev, <https://a/x?p=3>; rel="next""#).as_deref(),
            Some("https://a/x?p=3")
        );
        assert_eq!(next_link(r#"<https://a/x?p=2>; REL="next last""#).as_deref(), Some("https://a/x?p=2"));
        assert_eq!(next_link(r#"<https://a/x?p=1>; rel="prev""#), None);
    }
}
