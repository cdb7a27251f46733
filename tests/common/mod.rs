//! Shared helpers for the end-to-end tests: temporary repositories and running the binary.

pub mod browser;
pub mod certs;
pub mod cluster;
pub mod demo;
pub mod fs;
pub mod generated;
pub mod git_ssh;
pub mod image;
pub mod node;
pub mod previous;
pub mod registry;
pub mod temp;
pub mod tools;

pub use fs::copy_dir;
pub use weaver_test_support::{git, git_http, skip};

use std::path::{Path, PathBuf};
use std::process::Command;

pub const WEAVER: &str = env!("CARGO_BIN_EXE_weaver");

/// Each environment of a fleet's JSON report with its `state` (applied, failed, skipped…).
pub fn fleet_states(report: &serde_json::Value) -> Vec<(&str, &str)> {
    let environments = report["environments"].as_array().expect("a fleet report's `environments`");
    environments.iter().map(|e| (e["environment"].as_str().unwrap(), e["state"].as_str().unwrap())).collect()
}

/// The project's own checkout, which doubles as the demo repository.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The result of one weaver run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &str {
        assert_eq!(self.code, 0, "weaver failed:\n{}", self.stderr);
        &self.stdout
    }

    /// Asserts exit code 1 and returns stderr.
    #[track_caller]
    pub fn failure(&self) -> &str {
        assert_eq!(self.code, 1, "expected exit code 1; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stdout.is_empty(), "a failed run printed to stdout:\n{}", self.stdout);
        &self.stderr
    }
}

pub fn weaver_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    binary_in(Path::new(WEAVER), dir, args, envs)
}

/// [`weaver_in`] with `input` on weaver's stdin.
pub fn weaver_input(dir: &Path, args: &[&str], envs: &[(&str, &str)], input: &[u8]) -> Run {
    use std::io::Write;
    let mut cmd = command(Path::new(WEAVER), dir, args, envs);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start weaver");
    // A weaver that stops before reading it all (a bad flag) closes the pipe: its output says why.
    match child.stdin.take().expect("a stdin").write_all(input) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => panic!("write weaver's stdin: {err}"),
        _ => {}
    }
    ran(child.wait_with_output().expect("run weaver"))
}

/// [`weaver_in`] with another weaver binary (a previous release's).
pub fn binary_in(binary: &Path, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    ran(command(binary, dir, args, envs).output().expect("run weaver"))
}

fn ran(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// weaver in `dir`, isolated from the developer's keys, kube config and registry logins.
fn command(binary: &Path, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--repo").arg(dir).args(args).env("NO_COLOR", "1");
    // Tests must not pick up the developer's keys or kube config.
    for var in [
        "WEAVER_AGE_KEY_FILE",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY",
        "KUBECONFIG",
        "DOCKER_CONFIG",
        "HELM_REGISTRY_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", dir.join(".no-config")).env("HOME", dir.join(".no-home"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// A throwaway repository.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    pub fn empty() -> Repo {
        Repo { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A minimal valid repository: chart `app` (one ConfigMap) and environment `dev`.
    pub fn minimal() -> Repo {
        let repo = Repo::empty();
        repo.write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n")
            .write("charts/app/values.yaml", "greeting: hello\n")
            .write(
                "charts/app/templates/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  greeting: {{ values.greeting }}\n",
            )
            .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
        repo
    }

    /// [`Repo::minimal`]'s chart `app` (a ConfigMap named after its release) in environments
    /// `a` and `b` (label `fleet: test`), each in a namespace of `cluster` of its own, and `c`
    /// in `a`'s: `a` and `c` own one object. All three share one lock namespace.
    pub fn cluster_fleet(cluster: &cluster::TestCluster) -> Repo {
        let repo = Repo::minimal();
        let lock = cluster.namespace("lock");
        let (a, b) = (cluster.namespace("a"), cluster.namespace("b"));
        for (env, ns) in [("a", &a), ("b", &b), ("c", &a)] {
            repo.write(
                &format!("environments/{env}.yaml"),
                &format!("namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nlabels: {{fleet: test}}\nreleases:\n  - name: app\n    chart: app\n"),
            );
        }
        repo
    }

    /// A copy of the demo repository (environments, charts, secrets) of this checkout.
    pub fn demo() -> Repo {
        let repo = Repo::empty();
        for dir in ["environments", "charts", "secrets"] {
            copy_dir(&project_root().join(dir), &repo.path().join(dir));
        }
        repo
    }

    /// The demo without the release of weaver's chart (the ConfigMapSync operator and the
    /// GitOps controller) and its tenants' releases (the end of its dev environment): their CRDs
    /// are shared on a real cluster, and the tests of the shop's releases don't need them.
    pub fn demo_without_operator() -> Repo {
        let repo = Repo::demo();
        let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
        let start = dev.find("  # weaver's in-cluster half").expect("the demo's dev environment deploys the operator");
        repo.write("environments/dev.yaml", &dev[..start]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, content: &str) -> &Repo {
        self.write_bytes(path, content.as_bytes())
    }

    pub fn write_bytes(&self, path: &str, content: &[u8]) -> &Repo {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        self
    }

    pub fn remove(&self, path: &str) -> &Repo {
        std::fs::remove_file(self.dir.path().join(path)).unwrap();
        self
    }

    pub fn weaver(&self, args: &[&str]) -> Run {
        weaver_in(self.path(), args, &[])
    }

    /// `weaver --kubeconfig <the cluster's> ARGS` in this repository.
    pub fn weaver_on(&self, cluster: &cluster::TestCluster, args: &[&str]) -> Run {
        let kubeconfig = cluster.kubeconfig().to_str().expect("a UTF-8 path").to_string();
        let mut all = vec!["--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        self.weaver(&all)
    }

    pub fn weaver_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        weaver_in(self.path(), args, envs)
    }

    /// Starts weaver without waiting for it, its stdout and stderr piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = command(Path::new(WEAVER), self.path(), args, &[]);
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        cmd.spawn().expect("start weaver")
    }
}

/// What an import's stderr lists as not converted, one `not converted: FILE:LINE: what: why` a
/// place, in file and line order, whether said alone or under a reason several places share
/// (`not converted, N times: why`, then `  FILE:LINE: what` each, or the first three of more
/// than five and `  … and N more`, which is not a place).
pub fn not_converted(stderr: &str) -> Vec<String> {
    let mut listed = Vec::new();
    let mut shared: Option<&str> = None;
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("not converted, ") {
            shared = rest.split_once(" times: ").map(|(_, why)| why);
        } else if let (Some(why), Some(place)) = (shared, line.strip_prefix("  ")) {
            if !place.starts_with("… and ") {
                listed.push(format!("not converted: {place}: {why}"));
            }
        } else {
            shared = None;
            if line.starts_with("not converted: ") {
                listed.push(line.to_string());
            }
        }
    }
    // `FILE:LINE` as (file, line number): line 6 before line 22.
    let place = |line: &String| {
        let at = line.trim_start_matches("not converted: ");
        let mut parts = at.splitn(3, ':');
        let file = parts.next().unwrap_or_default().to_string();
        (file, parts.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
    };
    listed.sort_by_key(place);
    listed
}

/// Whether `tool` can be used; when not, the test says it is skipped (or, under
/// WEAVER_REQUIRE_INTEROP=1, fails).
#[track_caller]
pub fn interop_available(tool: &str, available: bool) -> bool {
    skip::interop_or_skip((!available).then(|| format!("{tool} is not available")).as_deref())
}

/// Polls `check` every 200 ms until it answers Ok, for at most a minute (RBAC and caches settle
/// within seconds on a real cluster); the panic says what was awaited and what was last seen.
#[track_caller]
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if std::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

/// helm, or None after saying the test skips without it (a failure under
/// WEAVER_REQUIRE_INTEROP=1).
pub fn helm_or_skip() -> Option<std::path::PathBuf> {
    match tools::helm() {
        Ok((helm, _)) => Some(helm),
        Err(why) => {
            skip::interop_or_skip(Some(&why));
            None
        }
    }
}

/// `text` with each `<redacted:…>` marker numbered in order of first appearance: markers are keyed
/// by the identity held (per run without one), what stays the same is which values are equal.
pub fn numbered_markers(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let pattern = regex::Regex::new(r"<redacted:[0-9a-f]{8}>").unwrap();
    pattern
        .replace_all(text, |found: &regex::Captures| {
            let position = seen.iter().position(|m| *m == found[0]).unwrap_or_else(|| {
                seen.push(found[0].to_string());
                seen.len() - 1
            });
            format!("<redacted:{}>", position + 1)
        })
        .into_owned()
}
