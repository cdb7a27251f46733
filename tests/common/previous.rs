//! The previous release of weaver, which the upgrade tests (tests/upgrade.rs) install before
//! upgrading to the tree under test: its binary, built from the commit of `main` that
//! [`COMMIT`] names, and its image, built from that binary as the tree's own (common::image)
//! and tagged as its chart's appVersion (`weaver-e2e.local/weaver:0.1.0`).
//!
//! The commit is taken from this checkout's history (`git archive`), built with `cargo build
//! --locked` into `<target>/previous/` (a first build takes as long as any whole build; later
//! runs reuse it), or `WEAVER_E2E_PREVIOUS_BINARY` names a binary of it built elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::image::{self, Image};

/// The previous release's version, and the commit of `main` it was built from: the last commit
/// before the API's `v1beta1` (33a6c03), `weaver --version` of which says `weaver 0.1.0`.
pub const VERSION: &str = "0.1.0";
pub const COMMIT: &str = "698c477f6e1b799b3722a3ce96274a87149f792b";

/// The previous release's binary and image.
pub struct Previous {
    pub binary: PathBuf,
    pub image: Image,
}

/// The previous release, built once per run; Err says why it cannot be.
pub fn previous() -> &'static Result<Previous, String> {
    static PREVIOUS: OnceLock<Result<Previous, String>> = OnceLock::new();
    PREVIOUS.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().map(|t| t.join("previous")).unwrap();
        let binary = match std::env::var_os("WEAVER_E2E_PREVIOUS_BINARY") {
            Some(binary) => PathBuf::from(binary),
            None => build(&target)?,
        };
        let version = run(Command::new(&binary).arg("--version"))?;
        if version.trim() != format!("weaver {VERSION}") {
            return Err(format!("{} says {version:?}, not weaver {VERSION}", binary.display()));
        }
        let dir = target.join("image");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let image =
            image::weaver_named(&binary, &dir.join("weaver.tar"), &format!("{}:{VERSION}", image::WEAVER_REPOSITORY))?;
        Ok(Previous { image, binary })
    })
}

/// `cargo build --locked --bin weaver` of [`COMMIT`]'s tree, extracted under `target`.
fn build(target: &Path) -> Result<PathBuf, String> {
    let root = super::project_root();
    let source = target.join(&COMMIT[..8]);
    if !source.join("Cargo.toml").exists() {
        run(Command::new("git").current_dir(&root).args(["cat-file", "-e", &format!("{COMMIT}^{{commit}}")]))
            .map_err(|e| format!("this checkout does not hold commit {COMMIT} (a shallow clone?): {e}"))?;
        std::fs::create_dir_all(&source).map_err(|e| format!("cannot create {}: {e}", source.display()))?;
        let archive = target.join(format!("{}.tar", &COMMIT[..8]));
        run(Command::new("git").current_dir(&root).args(["archive", "-o"]).arg(&archive).arg(COMMIT))?;
        run(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&source))?;
        let _ = std::fs::remove_file(&archive);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(&source)
        .env("CARGO_TARGET_DIR", target.join("target"))
        .args(["build", "--locked", "--bin", "weaver"]))?;
    Ok(target.join("target/debug/weaver"))
}

fn run(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!("{command:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr))),
    }
}
