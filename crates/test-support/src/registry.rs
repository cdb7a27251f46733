//! Debian's `docker-registry` (the distribution project's registry) as the tests and benchmarks
//! run it: on a port of an address (loopback, or where a node's Pods reach this machine), its
//! storage in a directory of theirs.

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = "/usr/bin/docker-registry";

/// docker-registry serving `dir`'s storage (`dir/data`) on `address`:`port`, with `more` added
/// to its configuration (an `auth:` section, say) and its log at `level` into `log` (or
/// nowhere), once it listens.
pub fn serve(dir: &Path, address: Ipv4Addr, port: u16, more: &str, level: &str, log: Option<&Path>) -> Child {
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}:{port}\n{more}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut child = Command::new(BINARY)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
    let started = Instant::now();
    while TcpStream::connect((address, port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("docker-registry did not listen within 20 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}
