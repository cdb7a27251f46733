//! Embeds the charts `charts/weaver` (the in-cluster half: controllers, webhook, UI) and
//! `charts/environment-sync` (a tenant of its EnvironmentSync controller) in the binary, so that
//! `weaver install` always installs the chart of its own version and `weaver bootstrap` and
//! `weaver tenant add` write the charts of their own version: the build writes
//! `$OUT_DIR/charts.rs`, for each chart a list of its files' paths and bytes, read from the
//! repository's charts themselves (one source of truth).
use std::path::{Path, PathBuf};

/// Each chart embedded: its directory under `charts/`, and the static its files are in.
const CHARTS: [(&str, &str); 2] = [("weaver", "WEAVER"), ("environment-sync", "ENVIRONMENT_SYNC")];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut out = String::new();
    for (name, constant) in CHARTS {
        let chart = manifest.join("../../charts").join(name);
        let mut files = Vec::new();
        walk(&chart, &chart, &mut files);
        files.sort();
        println!("cargo::rerun-if-changed={}", chart.display());
        out.push_str(&format!(
            "/// The files of `charts/{name}`, by path relative to it.\npub static {constant}: &[(&str, &[u8])] = &[\n"
        ));
        for (relative, full) in &files {
            println!("cargo::rerun-if-changed={}", full.display());
            out.push_str(&format!("    ({relative:?}, include_bytes!({:?})),\n", full.display().to_string()));
        }
        out.push_str("];\n");
    }
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("charts.rs");
    std::fs::write(dest, out).expect("write charts.rs");
}

/// Every file below `dir`, with its path relative to `root` (directories are watched too, so a
/// file added or removed rebuilds).
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("read {}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            println!("cargo::rerun-if-changed={}", path.display());
            walk(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("below the chart").to_string_lossy().into_owned();
            files.push((relative, path));
        }
    }
}
