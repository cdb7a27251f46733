//! Debian's `docker-registry` (the distribution project's registry) for the tests that push
//! to or pull from an OCI registry: remote charts, `weaver hydrate --oci`.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's docker-registry on a loopback port, its storage in a temporary directory.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// The registry, or why it cannot be had (no binary: a skip the caller says). One that is
    /// there but fails to start or listen fails the test: that is not a missing tool.
    pub fn start() -> Result<Registry, String> {
        let binary = Path::new("/usr/bin/docker-registry");
        if !binary.exists() {
            return Err("no /usr/bin/docker-registry (apt-get install docker-registry)".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        let registry = Registry { child, port, dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                panic!("docker-registry did not listen within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(registry)
    }
}

impl Registry {
    /// Where the registry keeps its configuration and storage (`data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `charts/weaver`, packaged by `helm` (its configuration and cache in `home`) and pushed
    /// here: the chart's `oci://` reference, whose version is the binary's.
    pub fn push_weaver_chart(&self, helm: &Path, home: &Path) -> String {
        let run = |args: &[&str]| super::tools::run_helm(helm, home, None, args);
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/weaver");
        run(&["package", chart.to_str().unwrap(), "-d", home.to_str().unwrap()]);
        let archive = home.join(format!("weaver-{}.tgz", env!("CARGO_PKG_VERSION")));
        let oci = format!("oci://127.0.0.1:{}/charts", self.port);
        run(&["push", archive.to_str().unwrap(), &oci, "--plain-http"]);
        format!("{oci}/weaver")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
