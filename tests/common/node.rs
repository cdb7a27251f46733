//! The end-to-end suite's cluster with nodes, where weaver runs in Pods from its image:
//! `WEAVER_E2E_KUBECONFIG` (its current context) and `WEAVER_E2E_LOAD_IMAGE`, a command that
//! loads an image archive into the nodes, run as `sh -c "COMMAND ARCHIVE"` (`kind load
//! image-archive --name NAME`, `k3d image import -c NAME`, `minikube image load`, the rig's
//! `rig-import.sh`). See docs/src/guides/install-in-a-cluster.md.
//!
//! Without both, each e2e test skips and says why, even under WEAVER_REQUIRE_INTEROP=1: that flag
//! turns a missing *tool* into a failure so that CI cannot lose interop tests unnoticed, while a
//! cluster with nodes is no tool of the test machine; CI runs the fake API server, and the e2e
//! suite is run on purpose against a node.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::OnceLock;

use super::cluster::TestCluster;
use super::image::{self, Image};
use super::previous::Previous;

/// A cluster with nodes, and how to load images into them.
pub struct E2e {
    kubeconfig: PathBuf,
    load: String,
}

/// The images the suite runs, built from this checkout's binary and the machine's
/// busybox-static and redis-server, and loaded into the nodes.
pub struct Images {
    pub weaver: Image,
    pub shop_web: Image,
    pub redis: Image,
}

impl E2e {
    /// The e2e cluster, or None after saying why the test skips.
    pub fn or_skip() -> Option<E2e> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (var("WEAVER_E2E_KUBECONFIG"), var("WEAVER_E2E_LOAD_IMAGE")) {
            (Some(kubeconfig), Some(load)) => Some(E2e { kubeconfig: kubeconfig.into(), load }),
            (kubeconfig, _) => {
                let missing = if kubeconfig.is_none() { "WEAVER_E2E_KUBECONFIG" } else { "WEAVER_E2E_LOAD_IMAGE" };
                super::skip::say_skipped(&format!(
                    "an end-to-end test, and {missing} is not set (a cluster with nodes and a command loading \
                     images into them: docs/src/development/end-to-end.md)"
                ));
                None
            }
        }
    }

    /// A [`TestCluster`] on the e2e cluster: this test's namespaces, deleted with it.
    pub fn cluster(&self) -> TestCluster {
        TestCluster::start_on(self.kubeconfig.clone())
    }

    /// weaver's image from the binary under test and the demo's stand-ins, built and loaded once
    /// per run; None after saying why the test skips (a stand-in's program is not installed).
    /// A load that fails fails the test.
    pub fn images(&self) -> Option<&'static Images> {
        static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
        let images = IMAGES.get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-images");
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let images = Images {
                weaver: image::weaver(&weaver_binary(), &dir)?,
                shop_web: image::shop_web(&dir)?,
                redis: image::redis(&dir)?,
            };
            for image in [&images.weaver, &images.shop_web, &images.redis] {
                self.load(image);
            }
            Ok(images)
        });
        match images {
            Ok(images) => Some(images),
            Err(why) => {
                super::skip::say_skipped(&format!("an end-to-end test, and its images cannot be built: {why}"));
                None
            }
        }
    }

    /// The previous release (common::previous), and the image of the binary under test tagged
    /// as its chart's appVersion (`weaver-e2e.local/weaver:<version>`): both loaded into the
    /// nodes once per run, so that an install or a bootstrap setting `image.repository` alone
    /// runs each release's own, as a user's with a registry of their own does; None after
    /// saying why the test skips.
    pub fn previous_and_current(&self) -> Option<(&'static Previous, &'static Image)> {
        static CURRENT: OnceLock<Result<Image, String>> = OnceLock::new();
        let previous = match super::previous::previous() {
            Ok(previous) => previous,
            Err(why) => {
                super::skip::say_skipped(&format!("an upgrade test, and the previous release cannot be built: {why}"));
                return None;
            }
        };
        let current = CURRENT.get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-images");
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let name = format!("{}:{}", image::WEAVER_REPOSITORY, env!("CARGO_PKG_VERSION"));
            let current = image::weaver_named(&weaver_binary(), &dir.join("weaver-versioned.tar"), &name)?;
            self.load(&previous.image);
            self.load(&current);
            Ok(current)
        });
        match current {
            Ok(current) => Some((previous, current)),
            Err(why) => {
                super::skip::say_skipped(&format!("an upgrade test, and its images cannot be built: {why}"));
                None
            }
        }
    }

    fn load(&self, image: &Image) {
        self.load_archive(&image.archive);
    }

    /// Loads an image archive (a docker-archive or an OCI image layout) into the nodes; never
    /// while a test restarts the container runtime ([`RUNTIME`]).
    pub fn load_archive(&self, archive: &std::path::Path) {
        let _runtime = RUNTIME.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let line = format!("{} '{}'", self.load, archive.display());
        let out = std::process::Command::new("sh").arg("-c").arg(&line).output().expect("run sh");
        assert!(
            out.status.success(),
            "WEAVER_E2E_LOAD_IMAGE (`{line}`) failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How to restart the container runtime under the nodes: `WEAVER_E2E_RESTART_RUNTIME`, a
    /// shell command returning once the runtime answers (`docker exec NODE systemctl restart
    /// containerd` for kind, `minikube ssh -- sudo systemctl restart containerd`, the rig's
    /// `restart-containerd.sh`); None after saying why the test skips, when it is not set.
    pub fn runtime_restart(&self) -> Option<RuntimeRestart> {
        match std::env::var("WEAVER_E2E_RESTART_RUNTIME").ok().filter(|v| !v.trim().is_empty()) {
            Some(line) => Some(RuntimeRestart(line)),
            None => {
                super::skip::say_skipped(
                    "WEAVER_E2E_RESTART_RUNTIME is not set (a command restarting the nodes' container runtime: \
                     docs/src/guides/install-in-a-cluster.md)",
                );
                None
            }
        }
    }

    /// The address Pods reach this machine at (for servers the test starts):
    /// `WEAVER_E2E_HOST_ADDRESS`, else the first node's InternalIP, right where the node is this
    /// machine (the rig, minikube's `none` driver); kind's is its network's gateway.
    pub fn host_address(&self, cluster: &TestCluster) -> Ipv4Addr {
        if let Ok(address) = std::env::var("WEAVER_E2E_HOST_ADDRESS") {
            return address.parse().unwrap_or_else(|e| panic!("WEAVER_E2E_HOST_ADDRESS {address:?}: {e}"));
        }
        let nodes = cluster.list_all("v1", "Node", "nodes");
        let addresses = nodes.first().and_then(|node| node.pointer("/status/addresses")).cloned().unwrap_or_default();
        let internal = addresses.as_array().into_iter().flatten().find(|a| a["type"] == "InternalIP");
        let address = internal.and_then(|a| a["address"].as_str()).expect("a node with an InternalIP");
        address.parse().unwrap_or_else(|e| panic!("the node's InternalIP {address:?}: {e}"))
    }
}

/// The binary weaver's image is built from: `WEAVER_E2E_IMAGE_BINARY` (a release build, for
/// figures of memory that hold for the image users run), else the binary under test.
fn weaver_binary() -> PathBuf {
    std::env::var_os("WEAVER_E2E_IMAGE_BINARY").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(super::WEAVER))
}

/// Held to restart the nodes' container runtime, and shared to load an image into it: a load
/// while containerd restarts fails (the upgrade tests load theirs when they start, while the
/// suite's other tests run).
static RUNTIME: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The command restarting the nodes' container runtime.
pub struct RuntimeRestart(String);

impl RuntimeRestart {
    /// Runs it, no image being loaded meanwhile; a failure fails the test.
    pub fn run(&self) {
        let _runtime = RUNTIME.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = std::process::Command::new("sh").arg("-c").arg(&self.0).output().expect("run sh");
        assert!(
            out.status.success(),
            "WEAVER_E2E_RESTART_RUNTIME (`{}`) failed: {}\n{}{}",
            self.0,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Writes `figure <test>: <what>: <value>` to the real stderr, shown whatever libtest captures:
/// what the suite measured on the node.
pub fn figure(what: &str, value: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let _ = writeln!(std::io::stderr(), "figure {}: {what}: {value}", thread.name().unwrap_or("a test"));
}
