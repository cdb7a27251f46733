//! Plain HTTP/1 serving for the operator's ports: its probes and metrics (`endpoints`), the
//! EnvironmentSync webhook receiver's and the UI's.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Serves plain HTTP/1 on `listener`, each request answered by `answer` (with the client's
/// `SocketAddr` among its extensions), until `shutdown` completes.
pub async fn serve_with<A, F>(
    listener: tokio::net::TcpListener,
    answer: A,
    shutdown: impl std::future::Future<Output = ()>,
) where
    A: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let answer = answer.clone();
                // The client's address, for whoever limits by it (the UI's sign-in).
                let service = service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    answer(request)
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}
