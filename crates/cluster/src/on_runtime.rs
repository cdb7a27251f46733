//! A tower layer that runs each request on a given runtime, whichever runtime its caller runs
//! on: the shared clients' connections (`servers.rs`) and the live cache's (`live.rs`) outlive the
//! runtime of the environment or page that opened them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs each request of the service it wraps on `runtime`: the request's connection (and the
/// task that drives it) is opened there, whichever runtime the caller runs on.
#[derive(Clone)]
pub(super) struct OnRuntime {
    pub(super) runtime: tokio::runtime::Handle,
}

impl<S> tower::Layer<S> for OnRuntime {
    type Service = OnRuntimeService<S>;

    fn layer(&self, inner: S) -> OnRuntimeService<S> {
        OnRuntimeService { inner, runtime: self.runtime.clone() }
    }
}

pub(super) struct OnRuntimeService<S> {
    inner: S,
    runtime: tokio::runtime::Handle,
}

impl<S, R> tower::Service<R> for OnRuntimeService<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<tower::BoxError> + Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, tower::BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tower::BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let running = self.runtime.spawn(self.inner.call(request));
        Box::pin(async move {
            match running.await {
                Ok(answer) => answer.map_err(Into::into),
                Err(stopped) => Err(stopped.into()),
            }
        })
    }
}
