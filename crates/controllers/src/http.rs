//! Plain HTTP/1 serving for the operator's ports: its probes and metrics (`endpoints`), the
//! EnvironmentSync webhook receiver's and the UI's. Every port may be reached by hostile peers,
//! so each server bounds what one costs (`Limits`): a header must arrive whole within a timeout
//! (which also closes idle keep-alive connections), a header is at most `max_header_bytes`, a body
//! is read within `body_timeout`, and connections are bounded per server and per client address,
//! so that a flood of one port cannot take the process's descriptors or memory from the others
//! (the kubelet's probes have a listener of their own), and an answer the client does not read
//! is given up after `write_timeout`. hyper offers the timeouts and sizes;
//! neither hyper-util nor tower bounds connections at `accept`, so that part is here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What one server lets its peers cost. The defaults fit a controller's ports: a git host's
/// deliveries, a team's browsers behind one Ingress, a kubelet and a Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; past it a new one is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Connections open at once from one client address (an Ingress controller is one).
    pub max_connections_per_client: usize,
    /// How long a request's header may take to arrive whole, and how long a kept-alive
    /// connection may wait for its next request.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive whole.
    pub body_timeout: Duration,
    /// How long an answer may wait for the client to take more of it (one that never reads
    /// would hold its connection, and the answer's memory, for ever).
    pub write_timeout: Duration,
    /// The largest request header, request line included (answered 431 past it).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_connections_per_client: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            // hyper refuses less than 8 KiB; browsers send a few KiB of cookies at most.
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Serves HTTP/1 on `listener` within `limits`, over TLS with `tls` (whose handshake must end
/// within `limits.header_timeout` too), each request answered by `answer` (with the client's
/// `SocketAddr` among its extensions), until `shutdown` completes.
pub async fn serve<A, F>(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    answer: A,
    shutdown: impl std::future::Future<Output = ()>,
) where
    A: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let open = Connections::new(limits.max_connections, limits.max_connections_per_client);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut failures = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                failures.reset();
                accepted
            }
            // Out of descriptors (EMFILE), or a connection reset before it was taken: retrying
            // at once would spin a core until something closes. Waiting longer each time lets
            // the open connections finish.
            Err(err) => {
                let wait = failures.next();
                if failures.is_first() {
                    tracing::warn!("accepting a connection failed: {err}; trying again in {wait:?}, then less often");
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        // Past a bound the connection is closed at once (dropped): its descriptor is freed,
        // and the kernel's queue of connections not yet accepted does not fill up.
        let Some(held) = open.hold(peer.ip()) else { continue };
        let answer = answer.clone();
        // The client's address, for whoever limits by it (the UI's sign-in, the webhook).
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(peer);
            answer(request)
        });
        let stream = WriteTimeout::new(stream, limits.write_timeout);
        let http = http.clone();
        let (tls, handshake_timeout) = (tls.clone(), limits.header_timeout);
        tokio::spawn(async move {
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(tls) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
            drop(held);
        });
    }
}

/// Why a request's body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is over {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive within {0:?}")]
    TimedOut(Duration),
    #[error("cannot read the request's body: {0}")]
    Failed(String),
}

/// A request's whole body, at most `max` bytes, arrived within `limits.body_timeout`: a peer
/// sending it a byte at a time holds no connection longer than that.
pub async fn read_body(body: Incoming, max: usize, limits: &Limits) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(limits.body_timeout, Limited::new(body, max).collect()).await {
        Err(_) => Err(BodyError::TimedOut(limits.body_timeout)),
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(err)) if err.is::<LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Ok(Err(err)) => Err(BodyError::Failed(err.to_string())),
    }
}

/// A connection whose writes fail once one has waited `timeout` for the client to read.
struct WriteTimeout {
    stream: tokio::net::TcpStream,
    timeout: Duration,
    /// Started when a write first found the client's window full.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteTimeout {
    fn new(stream: tokio::net::TcpStream, timeout: Duration) -> WriteTimeout {
        WriteTimeout { stream, timeout, waiting: None }
    }

    /// `written`, or a timeout once writes have waited too long.
    fn timed<T>(&mut self, cx: &mut Context<'_>, written: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if written.is_ready() {
            self.waiting = None;
            return written;
        }
        let timeout = self.timeout;
        let waiting = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing of the answer for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.timed(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.timed(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        self.timed(cx, flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The connections a server holds open: in all and by client address.
#[derive(Clone)]
struct Connections {
    max: usize,
    max_per_client: usize,
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
}

impl Connections {
    fn new(max: usize, max_per_client: usize) -> Connections {
        Connections { max, max_per_client, open: Arc::default() }
    }

    /// A place for one more connection from `client`, given back when dropped; none past a
    /// bound.
    fn hold(&self, client: IpAddr) -> Option<Held> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (all, by_client) = &mut *open;
        let of_client = by_client.entry(client).or_insert(0);
        if *all >= self.max || *of_client >= self.max_per_client {
            if *of_client == 0 {
                by_client.remove(&client);
            }
            return None;
        }
        *all += 1;
        *of_client += 1;
        Some(Held { connections: self.clone(), client })
    }
}

struct Held {
    connections: Connections,
    client: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (all, by_client) = &mut *open;
        *all -= 1;
        if let Some(of_client) = by_client.get_mut(&self.client) {
            *of_client -= 1;
            if *of_client == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// The waits after consecutive failed `accept`s: 5 ms doubled up to a second, as Go's
/// net/http waits on a temporary accept error.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(5).saturating_mul(1 << (self.failures - 1).min(8)).min(Duration::from_secs(1))
    }

    /// Whether the last failure began a run of them (the one worth logging).
    fn is_first(&self) -> bool {
        self.failures == 1
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_in_all_and_per_client() {
        let connections = Connections::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first = connections.hold(a).expect("room");
        let second = connections.hold(a).expect("room");
        assert!(connections.hold(a).is_none(), "a third from one client");
        let third = connections.hold(b).expect("another client has room");
        assert!(connections.hold(c).is_none(), "the server is full");
        drop(first);
        let again = connections.hold(c).expect("one was closed");
        drop((second, third, again));
        let open = connections.open.lock().unwrap();
        assert_eq!((open.0, open.1.len()), (0, 0), "every place given back, no client left counted");
    }

    #[test]
    fn failed_accepts_wait_longer_each_time_up_to_a_second_and_afresh_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<u64> = (0..10).map(|_| backoff.next().as_millis() as u64).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(5));
        assert!(backoff.is_first());
    }
}
