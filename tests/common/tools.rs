//! The reference tools the interop tests and the benches compare weaver with, found once here:
//! helm (`$WEAVER_HELM`, else `helm` on PATH) and kubectl embedding kustomize v5
//! (`$WEAVER_KUBECTL`, else `kubectl` on PATH). Each says why it is not usable, for a skip
//! message or a bench's note. Each is asked its version once per process, not once per test.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// helm, if it runs; with the version it reports.
pub fn helm() -> Result<(PathBuf, String), String> {
    static HELM: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();
    HELM.get_or_init(find_helm).clone()
}

fn find_helm() -> Result<(PathBuf, String), String> {
    let helm = std::env::var_os("WEAVER_HELM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("helm"));
    match Command::new(&helm).args(["version", "--short"]).output() {
        Ok(out) if out.status.success() => Ok((helm, String::from_utf8_lossy(&out.stdout).trim().to_string())),
        Ok(out) => Err(format!("{} version failed: {}", helm.display(), String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(format!("no helm ({}: {e}; set $WEAVER_HELM or put helm on PATH)", helm.display())),
    }
}

/// Runs `helm` with `args`, its configuration, cache and data in `home` (none of the
/// machine's), against `kubeconfig` when given; its stdout, or the test fails naming the call.
pub fn run_helm(
    helm: &std::path::Path,
    home: &std::path::Path,
    kubeconfig: Option<&std::path::Path>,
    args: &[&str],
) -> String {
    let mut command = weaver_test_support::helm::command(helm, home);
    command.args(args);
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// kubectl, if it runs and embeds kustomize v5; with that kustomize version.
pub fn kubectl_kustomize_v5() -> Result<(PathBuf, String), String> {
    static KUBECTL: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();
    KUBECTL.get_or_init(find_kubectl_kustomize_v5).clone()
}

/// The kubectl the tests run: `$WEAVER_KUBECTL`, else `kubectl` on PATH (whichever it embeds).
pub fn kubectl() -> PathBuf {
    std::env::var_os("WEAVER_KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

fn find_kubectl_kustomize_v5() -> Result<(PathBuf, String), String> {
    let kubectl = kubectl();
    let out = weaver_test_support::kubectl::command(&kubectl)
        .args(["version", "--client"])
        .output()
        .map_err(|e| format!("no kubectl ({}: {e}; set $WEAVER_KUBECTL or put kubectl on PATH)", kubectl.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().find_map(|l| l.strip_prefix("Kustomize Version: ")).unwrap_or("none").to_string();
    if version.starts_with("v5.") {
        Ok((kubectl, version))
    } else {
        Err(format!("{} embeds kustomize {version}, not v5 (kubectl 1.27 or later is needed)", kubectl.display()))
    }
}

/// The `python3` on PATH, as the interpreter's own path: a version manager's shim in front of it
/// (pyenv's is a bash script) cost 70 ms of CPU at every start. `python3` itself when it cannot
/// say, so a missing one fails where it is started, as before.
pub fn python3() -> PathBuf {
    static PYTHON3: OnceLock<PathBuf> = OnceLock::new();
    PYTHON3
        .get_or_init(|| {
            let out = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output();
            let path =
                out.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            path.filter(|p| !p.is_empty()).map_or_else(|| PathBuf::from("python3"), PathBuf::from)
        })
        .clone()
}
