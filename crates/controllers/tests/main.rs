//! The controller's servers under hostile peers, on loopback: a flood of connections, headers
//! and bodies that never finish, headers too large to hold. The peers are `flood.py` processes
//! (their descriptors are their own, as a remote peer's are), the servers run in this process.
//! Those that measure their process's descriptors and memory run in a process of their own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use weaver_controllers::http::{Limits, read_body};
use weaver_controllers::telemetry::Telemetry;

/// The tests that measure this process's descriptors or memory run in a process of their own
/// (this binary again, with only that test), so that nothing else changes what they measure
/// while the others run beside them; one such process at a time, as the floods of two would
/// slow each other's answers. True in that process, where the test goes on; false in the one
/// that started it, once it has checked that the test ran there and passed.
fn in_own_process(test: &str) -> bool {
    const ALONE: &str = "WEAVER_TEST_ALONE";
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let run = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1"])
        .env(ALONE, test)
        .output()
        .expect("the test binary runs again");
    let said = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{test}, in a process of its own, failed:\n{said}");
    assert!(said.contains("1 passed"), "{test} did not run in a process of its own:\n{said}");
    false
}

/// A server within `limits` that reads each request's body (at most 1 KiB) and answers how
/// many bytes it had, or why it has none; and the operator's /healthz beside it, on a listener
/// of its own.
struct Servers {
    runtime: Option<tokio::runtime::Runtime>,
    flooded: SocketAddr,
    health: SocketAddr,
}

impl Servers {
    fn start(limits: Limits) -> Servers {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listen = || runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let (flooded, health) = (listen(), listen());
        let addresses = (flooded.local_addr().unwrap(), health.local_addr().unwrap());
        let body_limits = limits.clone();
        let answer = move |request: Request<Incoming>| {
            let limits = body_limits.clone();
            async move {
                let said = match read_body(request.into_body(), 1024, &limits).await {
                    Ok(body) => format!("{} bytes", body.len()),
                    Err(err) => err.to_string(),
                };
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(said))))
            }
        };
        runtime.spawn(weaver_controllers::http::serve(flooded, None, limits.clone(), answer, std::future::pending()));
        let telemetry = Arc::new(Telemetry::default());
        runtime.spawn(weaver_controllers::endpoints::serve(health, limits, telemetry, std::future::pending()));
        Servers { runtime: Some(runtime), flooded: addresses.0, health: addresses.1 }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        // The runtime's tasks hold the connections: gone with it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `flood.py` against `target`: `count` connections, `per_source` from each loopback address,
/// each sent `header_bytes` of a header that never ends. Returns once it has sent what the
/// server would take (once no connection has taken more for `still`); the connections are held
/// until the `Flood` is dropped.
struct Flood(Child);

impl Flood {
    fn start(target: SocketAddr, count: usize, per_source: usize, header_bytes: usize, still: Duration) -> Flood {
        Flood::spawn(target, count, per_source, header_bytes, still).sent()
    }

    /// [`Flood::start`] without waiting for it to have sent: [`Flood::sent`] waits.
    fn spawn(target: SocketAddr, count: usize, per_source: usize, header_bytes: usize, still: Duration) -> Flood {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flood.py");
        let child = Command::new("python3")
            .arg(script)
            .args([target.ip().to_string(), target.port().to_string()])
            .args([count, per_source, header_bytes].map(|n| n.to_string()))
            .arg(still.as_secs_f64().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (the servers' tests start their hostile peers with it)");
        Flood(child)
    }

    fn sent(mut self) -> Flood {
        let mut line = String::new();
        BufReader::new(self.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("sent "), "flood.py did not start its flood: {line:?}");
        self
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// The status line of `GET path` on `address`, given `within` to answer.
fn get(address: SocketAddr, path: &str, within: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, within)?;
    stream.set_read_timeout(Some(within))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: weaver\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.lines().next().unwrap_or_default().to_string())
}

/// How long until the server closes `stream` (a read returns nothing, or the connection is
/// reset), reading whatever it answers first; none within `within`.
fn closed_after(stream: &mut TcpStream, within: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut answered = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some((started.elapsed(), String::from_utf8_lossy(&answered).into_owned())),
            Ok(n) => answered.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((started.elapsed(), String::from_utf8_lossy(&answered).into_owned()));
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn healthz_answers_while_twenty_thousand_connections_flood_another_port() {
    if !in_own_process("healthz_answers_while_twenty_thousand_connections_flood_another_port") {
        return;
    }
    let servers = Servers::start(Limits::default());
    let before = open_descriptors();
    // Two peers of 10,000 connections, from 40 addresses each: as the adversarial pass had it.
    // The server takes at most 1,024 of them; the rest wait on the listen queue or for their SYN
    // to be answered, and a quarter of a second in which none of them is taken ends the sending.
    let still = Duration::from_millis(250);
    let floods: Vec<Flood> = (0..2).map(|_| Flood::spawn(servers.flooded, 10_000, 250, 64, still)).collect();
    let floods: Vec<Flood> = floods.into_iter().map(Flood::sent).collect();
    let held = open_descriptors() - before;
    for attempt in 0..5 {
        let started = Instant::now();
        let status = get(servers.health, "/healthz", Duration::from_secs(2))
            .unwrap_or_else(|err| panic!("/healthz attempt {attempt} under the flood: {err}"));
        assert_eq!(status, "HTTP/1.1 200 OK", "attempt {attempt}");
        assert!(started.elapsed() < Duration::from_secs(1), "attempt {attempt}: {:?}", started.elapsed());
    }
    let limits = Limits::default();
    assert!(
        held <= limits.max_connections + 8,
        "the flooded server holds {held} descriptors: more than its {} connections",
        limits.max_connections
    );
    drop(floods);
}

#[test]
fn a_header_or_body_that_never_finishes_and_an_idle_connection_are_closed_by_their_timeouts() {
    let second = Duration::from_secs(1);
    let servers = Servers::start(Limits { header_timeout: second, body_timeout: second, ..Limits::default() });
    let within = Duration::from_secs(5);

    // The three at once, each closed by its own timeout.
    let mut half_header = TcpStream::connect(servers.flooded).unwrap();
    half_header.write_all(b"POST /hook/team/shop HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut half_body = TcpStream::connect(servers.flooded).unwrap();
    half_body.write_all(b"POST /hook/team/shop HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").unwrap();
    // A kept-alive connection: its request answered, then closed once it idles.
    let mut idle = TcpStream::connect(servers.flooded).unwrap();
    idle.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi").unwrap();

    let (after, _) = closed_after(&mut half_header, within).expect("a header that never ends is cut off");
    assert!(after >= second - Duration::from_millis(100), "closed too soon: {after:?}");
    let (_, answer) = closed_after(&mut half_body, within).expect("a body that never ends is cut off");
    assert!(answer.contains("the body did not arrive within 1s"), "{answer}");
    let mut answered = [0; 256];
    idle.set_read_timeout(Some(within)).unwrap();
    let n = idle.read(&mut answered).unwrap();
    assert!(
        String::from_utf8_lossy(&answered[..n]).ends_with("2 bytes"),
        "{}",
        String::from_utf8_lossy(&answered[..n])
    );
    closed_after(&mut idle, within).expect("an idle kept-alive connection is closed");
}

#[test]
fn two_thousand_headers_of_390_kb_never_finished_cost_little_memory() {
    if !in_own_process("two_thousand_headers_of_390_kb_never_finished_cost_little_memory") {
        return;
    }
    let servers = Servers::start(Limits::default());
    let before = resident_bytes();
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(resident_bytes());
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    // Sent once the server has read nothing for half a second: it reads no more of the headers.
    let flood = Flood::start(servers.flooded, 2_000, 200, 390_000, Duration::from_millis(500));
    // Whatever the server still makes of what it read, while the flood holds its connections.
    std::thread::sleep(Duration::from_millis(250));
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let grown = sampler.join().unwrap().saturating_sub(before);
    drop(flood);
    // Unbounded, the server buffered each header whole: 2,000 × 390 KB, 780 MB.
    assert!(grown < 64 << 20, "the resident set grew {} MiB under the flood", grown >> 20);
    assert_eq!(get(servers.flooded, "/", Duration::from_secs(2)).unwrap(), "HTTP/1.1 200 OK", "it still serves");
}

#[test]
fn an_answer_the_client_never_reads_is_given_up_after_the_write_timeout() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    // 64 MiB: far more than the kernel's socket buffers hold for a client that does not read.
    let answer_body = Bytes::from(vec![b'x'; 64 << 20]);
    let answer = move |_: Request<Incoming>| {
        let body = answer_body.clone();
        async move { Ok::<_, std::convert::Infallible>(Response::new(Full::new(body))) }
    };
    let limits = Limits { write_timeout: Duration::from_millis(500), ..Limits::default() };
    runtime.spawn(weaver_controllers::http::serve(listener, None, limits, answer, std::future::pending()));
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // The client reads nothing for three write timeouts, then all there is.
    std::thread::sleep(Duration::from_millis(1500));
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut read = 0;
    let mut buffer = vec![0; 1 << 20];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    runtime.shutdown_background();
    assert!(read < 64 << 20, "the whole answer waited for the client: {read} bytes");
}
