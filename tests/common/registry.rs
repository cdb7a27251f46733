//! Debian's `docker-registry` (the distribution project's registry) for the tests that push
//! to or pull from an OCI registry: remote charts, `weaver hydrate --oci`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Child;

use weaver_test_support::registry::BINARY;

/// Debian's docker-registry on a port of one address (loopback unless given), its storage in a
/// temporary directory.
pub struct Registry {
    child: Child,
    address: Ipv4Addr,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// The registry, or why it cannot be had (no binary: a skip the caller says). One that is
    /// there but fails to start or listen fails the test: that is not a missing tool.
    pub fn start() -> Result<Registry, String> {
        Registry::start_on(Ipv4Addr::LOCALHOST)
    }

    /// [`Registry::start`] listening on `address` (where the e2e suite's Pods reach this machine).
    pub fn start_on(address: Ipv4Addr) -> Result<Registry, String> {
        if !Path::new(BINARY).exists() {
            return Err("no /usr/bin/docker-registry (apt-get install docker-registry)".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind((address, 0)).unwrap().local_addr().unwrap().port();
        let child = serve(dir.path(), address, port, "");
        Ok(Registry { child, address, port, dir })
    }

    /// Its `host:port`, as a registry is named in an `oci://` reference and a docker config.
    pub fn host(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// From now on every request must log in as `user` with `password` (docker-registry's
    /// `auth: htpasswd:`, which answers `401` with a Basic challenge): the registry is served
    /// again, on its port and with what was pushed to it.
    pub fn require_login(&mut self, user: &str, password: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let htpasswd = self.dir.path().join("htpasswd");
        let hash = bcrypt::hash(password, 4).expect("a bcrypt hash");
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
        let auth = format!("auth:\n  htpasswd:\n    realm: weaver-test\n    path: {}\n", htpasswd.display());
        self.child = serve(self.dir.path(), self.address, self.port, &auth);
    }
}

/// docker-registry serving `dir`'s storage on `address`:`port` with `auth` (its config's `auth:`
/// section, or none), once it listens.
fn serve(dir: &Path, address: Ipv4Addr, port: u16, auth: &str) -> Child {
    weaver_test_support::registry::serve(dir, address, port, auth, "error", None)
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
        let oci = format!("oci://{}/charts", self.host());
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
