//! A loopback HTTP server for crates' tests (a registry, a chart repository, a token host):
//! each request answered by a handler, and recorded (method, path, headers, body) so that a
//! test can say what a host received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the server received: the method, the path with its query, the `Authorization` and
/// `If-None-Match` headers (empty when none), every header (its name lowercased) and the body.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub if_none_match: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (lowercase), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// An answer: the status line's code and reason, extra header lines (each ending `\r\n`) and
/// the body.
pub type Answer = (&'static str, String, Vec<u8>);

pub struct TestServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Listens on 127.0.0.1; `handler` gets the server's port and the request.
    pub fn start(handler: impl Fn(u16, &Received) -> Answer + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (received, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (log, stopping, handler) = (received.clone(), stop.clone(), Arc::new(handler));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let (log, handler) = (log.clone(), handler.clone());
                // A thread per connection: a slow answer holds no other.
                std::thread::spawn(move || {
                    if let Ok(stream) = stream {
                        serve(stream, port, &log, &*handler);
                    }
                });
            }
        });
        TestServer { port, received, stop, thread: Some(thread) }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What was received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    port: u16,
    log: &Mutex<Vec<Received>>,
    handler: &(dyn Fn(u16, &Received) -> Answer + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let (authorization, if_none_match) = (header("authorization"), header("if-none-match"));
    let mut body = vec![0; header("content-length").parse().unwrap_or(0)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").to_string();
    let received = Received { method, path, authorization, if_none_match, headers, body };
    log.lock().unwrap().push(received.clone());
    let (status, headers, body) = handler(port, &received);
    let body = if received.method == "HEAD" { Vec::new() } else { body };
    let head = format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
}
