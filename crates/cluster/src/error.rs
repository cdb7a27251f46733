//! API errors turned into messages that say what weaver was doing, against which cluster, what
//! the server said, and what to try.

use std::error::Error as StdError;
pub use weaver_core::time::humanize;

use super::ClusterInfo;
use weaver_core::error::Error;

/// An API error in one line: the server's message, its code and reason (kube's own Display
/// carries a debug dump of the whole Status).
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.message.is_empty() => format!("{} ({})", status.reason, status.code),
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => other.to_string(),
    }
}

/// The innermost cause of an error chain: the part that says what actually happened
/// (`connection refused`, `invalid peer certificate: UnknownIssuer`).
pub(crate) fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    // `Connection refused (os error 111)`: the number helps nobody.
    match text.find(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

pub(super) fn chain_mentions(err: &(dyn StdError + 'static), pred: impl Fn(&(dyn StdError + 'static)) -> bool) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if pred(e) {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether a request failed because the cluster did not answer in time (connect, read or write).
pub(super) fn timed_out(err: &(dyn StdError + 'static)) -> bool {
    chain_mentions(err, |e| {
        e.is::<tokio::time::error::Elapsed>()
            || e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || e.to_string().contains("timed out")
    })
}

/// `doing` is the request in words: `listing deployments.apps in namespace shop`.
pub(crate) fn request_error(err: kube::Error, doing: &str, cluster: &ClusterInfo) -> Error {
    let at = format!("context `{}`, {}", cluster.context, cluster.server);
    match err {
        kube::Error::Api(status) => {
            let server_says = if status.message.is_empty() { status.reason.clone() } else { status.message.clone() };
            match status.code {
                401 => Error::new(format!("{doing}: the cluster rejected the credentials ({at}): 401 Unauthorized"))
                    .with_help(format!(
                        "log in again, or check the user of context `{}` in the kubeconfig",
                        cluster.context
                    )),
                403 => Error::new(format!("{doing}: forbidden ({at}): {server_says}"))
                    .with_help("weaver's user needs this permission; `kubectl auth can-i` checks it")
                    .as_forbidden(),
                404 => Error::new(format!("{doing}: not found ({at}): {server_says}")).as_not_found(),
                code => {
                    Error::new(format!("{doing}: the server answered {code} {} ({at}): {server_says}", status.reason))
                }
            }
        }
        other => {
            let cause = innermost(&other);
            let tls = chain_mentions(&other, |e| {
                let text = e.to_string();
                text.contains("certificate") || text.contains("TLS") || text.contains("tls handshake")
            });
            if timed_out(&other) {
                let timeout = cluster.request_timeout;
                Error::new(format!("{doing}: the cluster did not answer within {} ({at})", humanize(timeout)))
                    .with_help("check that the server is reachable, or allow more time with --request-timeout")
            } else if tls {
                Error::new(format!("{doing}: TLS with the cluster failed ({at}): {cause}"))
                    .with_help("check the cluster's certificate-authority in the kubeconfig")
            } else {
                Error::new(format!("{doing}: cannot reach the cluster ({at}): {cause}"))
                    .with_help("check the server address of the context, and that the cluster is up")
            }
        }
    }
}
