//! The operator's HTTP endpoints for the kubelet's probes and for Prometheus: `/healthz`,
//! `/readyz` and `/metrics` (see `telemetry`). Plain HTTP/1 on the metrics port (`http`); nothing
//! else is served.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use crate::http::Limits;
use crate::telemetry::Telemetry;

/// Serves within `limits` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    limits: Limits,
    telemetry: Arc<Telemetry>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    crate::http::serve(listener, None, limits, move |request| answer(telemetry.clone(), request), shutdown).await
}

async fn answer(telemetry: Arc<Telemetry>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = respond(&telemetry, request.method(), request.uri().path());
    let response = Response::builder().status(status).header("Content-Type", content_type).body(Full::new(body.into()));
    // A status and one static header always make a valid response.
    Ok(response.expect("a valid response"))
}

/// The status, content type and body answering `method` `path`.
fn respond(telemetry: &Telemetry, method: &Method, path: &str) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (method, path) {
        (&Method::GET, "/healthz") => match telemetry.liveness.not_alive() {
            None => (StatusCode::OK, TEXT, "ok\n".to_string()),
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        (&Method::GET, "/readyz") => match telemetry.readiness.not_ready() {
            None => (StatusCode::OK, TEXT, "ok\n".to_string()),
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        (&Method::GET, "/metrics") => {
            (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", telemetry.encode())
        }
        (&Method::GET, _) => (StatusCode::NOT_FOUND, TEXT, "not found: try /healthz, /readyz or /metrics\n".into()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET is served\n".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_fails_naming_what_stopped_and_readyz_what_has_not_synced() {
        let telemetry = Telemetry::default();
        assert_eq!(respond(&telemetry, &Method::GET, "/healthz").0, StatusCode::OK);
        telemetry.liveness.stopped("the web UI", "reading the kubeconfig: no such file".into());
        let (status, _, body) = respond(&telemetry, &Method::GET, "/healthz");
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "the web UI stopped: reading the kubeconfig: no such file\n")
        );

        telemetry.readiness.set_synced("EnvironmentSync", false);
        let (status, _, body) = respond(&telemetry, &Method::GET, "/readyz");
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "the EnvironmentSync cache has not synced yet\n")
        );
        assert_eq!(respond(&telemetry, &Method::POST, "/healthz").0, StatusCode::METHOD_NOT_ALLOWED);
    }
}
