//! `cargo xtask release`: weaver's release artifacts from this checkout, the same commit giving
//! the same bytes (release/README.md says what each is and how they are checked).
//!
//! - `weaver-<version>-<target>`: the binary of each configured target this machine's Rust has
//!   a standard library for, stripped, with its dependency list embedded by cargo-auditable
//!   (`.dep-v0`, which `cargo audit bin` and syft read); for Linux on glibc, linked statically
//!   (`crt-static`: this machine has no musl standard library);
//! - `weaver-<version>-<target>.cdx.json`: its CycloneDX SBOM, from `cargo metadata`;
//! - `weaver-<version>-image.tar`: the image (the binary alone, as the Dockerfile builds it) of
//!   every Linux target built, as an OCI image layout whose index lists one manifest per
//!   platform (`ctr images import`, `skopeo copy oci-archive:` read it);
//! - `weaver-<version>.tgz`: the chart `charts/weaver`, as `helm package` lays it out;
//! - `SHA256SUMS` of all of them.
//!
//! `cargo xtask push DIR REGISTRY` (and `release --push REGISTRY`) pushes the artifacts of DIR:
//! the image index to `REGISTRY/weaver:<version>` and the chart to `oci://REGISTRY/charts/weaver`
//! (`<version>`), with the credentials helm and docker use.
//!
//! Reproducible: every time in an archive is zero or the commit's time (`SOURCE_DATE_EPOCH`),
//! entries are sorted, owners root, and the paths rustc would write (the checkout, cargo's home,
//! the target directory) are remapped to fixed ones.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use weaver_source::charts::oci;

/// A target weaver is released for, and how it is built.
struct Target {
    triple: &'static str,
    /// `os`, `architecture` of its image; None: no image (not Linux).
    platform: Option<(&'static str, &'static str)>,
    rustflags: &'static str,
}

/// Every configured target, one per platform (an image index holds one manifest per platform,
/// and what a machine builds must not depend on which standard libraries it has beside): each
/// is built where this machine's Rust holds its standard library (`rustup target add <triple>`
/// and a cross linker; macOS's: a Mac).
const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-gnu",
        platform: Some(("linux", "amd64")),
        // Static and not position-independent, as Go links helm and kubectl: a static PIE
        // relocated 46,000 pointers at every start, copying each page they are on (0.4 ms of
        // each command, and 1.1 MB of relocations in the binary).
        rustflags: "-C target-feature=+crt-static -C relocation-model=static",
    },
    Target { triple: "aarch64-unknown-linux-musl", platform: Some(("linux", "arm64")), rustflags: "" },
    Target { triple: "aarch64-apple-darwin", platform: None, rustflags: "" },
    Target { triple: "x86_64-apple-darwin", platform: None, rustflags: "" },
];

/// The checksums of a release's artifacts, `sha256sum --check` reads it.
const SUMS: &str = "SHA256SUMS";

/// The binary of `triple`: what CI templates download (a test holds them to it).
fn binary_name(version: &str, triple: &str) -> String {
    format!("weaver-{version}-{triple}")
}

#[derive(Parser)]
#[command(name = "cargo xtask", about = "weaver's release tasks")]
enum Xtask {
    /// Build weaver's release artifacts into --out: binaries, SBOMs, the image, the chart, SHA256SUMS
    Release(ReleaseArgs),
    /// Push the image and the chart of a release's artifacts to a registry
    Push(PushArgs),
}

#[derive(clap::Args)]
struct PushArgs {
    /// The artifacts' directory (`cargo xtask release --out`)
    dir: PathBuf,
    /// The registry (`host[:port][/path]`)
    registry: String,
    /// Over plain http (a registry on loopback)
    #[arg(long)]
    plain_http: bool,
}

#[derive(clap::Args)]
struct ReleaseArgs {
    /// Where the artifacts are written (emptied first)
    #[arg(long, value_name = "DIR", default_value = "target/release-artifacts")]
    out: PathBuf,
    /// Build only these targets (repeatable) [default: every configured one this machine can build]
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// Where cargo builds them [default: target/release-build]
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Build from a working tree with uncommitted changes (its artifacts are no commit's)
    #[arg(long)]
    allow_dirty: bool,
    /// Then push the image and the chart to this registry (`host[:port][/path]`), as `cargo xtask push`
    #[arg(long, value_name = "REGISTRY")]
    push: Option<String>,
    /// Push over plain http (a registry on loopback)
    #[arg(long, requires = "push")]
    plain_http: bool,
}

fn main() -> ExitCode {
    let done = match Xtask::parse() {
        Xtask::Release(args) => release(&args),
        Xtask::Push(args) => push(&args.dir, &args.registry, args.plain_http),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

type Result<T> = std::result::Result<T, String>;

/// The workspace's root: this crate's parent.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ is in the workspace").to_path_buf()
}

fn release(args: &ReleaseArgs) -> Result<()> {
    let root = root();
    let metadata = cargo_metadata(&root, None)?;
    let version = package(&metadata, "weaver")?["version"].as_str().unwrap_or_default().to_string();
    let epoch = commit_time(&root)?;
    let out = if args.out.is_absolute() { args.out.clone() } else { root.join(&args.out) };
    let target_dir = args.target_dir.clone().unwrap_or_else(|| root.join("target/release-build"));
    let target_dir = if target_dir.is_absolute() { target_dir } else { root.join(target_dir) };
    let dirty = run(Command::new("git").arg("-C").arg(&root).args(["status", "--porcelain", "--untracked-files=all"]))?;
    if !dirty.trim().is_empty() && !args.allow_dirty {
        return Err(format!(
            "the working tree has uncommitted changes (git status): a release is built from a commit\n  {}",
            dirty.lines().take(5).collect::<Vec<_>>().join("\n  ")
        ));
    }
    empty_out(&root, &out)?;
    let targets = chosen_targets(&args.targets)?;
    let mut images = Vec::new();
    for target in &targets {
        eprintln!("building weaver {version} for {}", target.triple);
        let binary = build(&root, &target_dir, target, epoch)?;
        let name = binary_name(&version, target.triple);
        copy(&binary, &out.join(&name))?;
        let sbom = sbom(&root, target.triple, &version, epoch)?;
        write(&out.join(format!("{name}.cdx.json")), &pretty(&sbom))?;
        if let Some(platform) = target.platform {
            let bytes = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
            images.push(image(&bytes, platform, &version, epoch)?);
        }
    }
    if !images.is_empty() {
        let index = image_index(&images, &version);
        write(&out.join(format!("weaver-{version}-image.tar")), &oci_layout(&index, &images, &version)?)?;
    }
    let chart = chart(&root.join("charts/weaver"))?;
    write(&out.join(format!("weaver-{version}.tgz")), &chart.archive)?;
    write(&out.join(SUMS), sums(&out)?.as_bytes())?;
    eprintln!("wrote {}", out.display());
    match &args.push {
        Some(registry) => push(&out, registry, args.plain_http),
        None => Ok(()),
    }
}

/// Makes `out` an empty directory: one holding anything but a former release's artifacts (its
/// `SHA256SUMS`), or the checkout itself, is refused.
fn empty_out(root: &Path, out: &Path) -> Result<()> {
    if root.starts_with(out) {
        return Err(format!("--out {} holds the checkout: give a directory of its own", out.display()));
    }
    if let Ok(mut entries) = std::fs::read_dir(out)
        && entries.next().is_some()
    {
        if !out.join(SUMS).is_file() {
            return Err(format!(
                "--out {} holds files that are not a release's (no SHA256SUMS): give an empty directory",
                out.display()
            ));
        }
        std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))
}

/// The configured targets `asked` names (every one this machine can build when none), each
/// checked to have its standard library here.
fn chosen_targets(asked: &[String]) -> Result<Vec<&'static Target>> {
    let sysroot = run(Command::new("rustc").args(["--print", "sysroot"]))?;
    let held = |triple: &str| Path::new(sysroot.trim()).join("lib/rustlib").join(triple).join("lib").is_dir();
    if asked.is_empty() {
        let (built, skipped): (Vec<&Target>, Vec<&Target>) = TARGETS.iter().partition(|t| held(t.triple));
        for target in skipped {
            eprintln!("skipped {}: this machine's Rust has no standard library for it", target.triple);
        }
        return Ok(built);
    }
    asked
        .iter()
        .map(|triple| {
            let target = TARGETS.iter().find(|t| t.triple == triple).ok_or_else(|| {
                let known: Vec<&str> = TARGETS.iter().map(|t| t.triple).collect();
                format!("--target {triple} is not a configured target: {}", known.join(", "))
            })?;
            match held(triple) {
                true => Ok(target),
                false => Err(format!(
                    "--target {triple}: this machine's Rust has no standard library for it (rustup target add {triple})"
                )),
            }
        })
        .collect()
}

/// The commit's time, which every time the artifacts hold is (`SOURCE_DATE_EPOCH` when set).
fn commit_time(root: &Path) -> Result<i64> {
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        return epoch.parse().map_err(|_| format!("SOURCE_DATE_EPOCH={epoch} is not a number of seconds"));
    }
    let time = run(Command::new("git").arg("-C").arg(root).args(["log", "-1", "--format=%ct"]))?;
    time.trim().parse().map_err(|_| format!("git log gave no commit time: {time}"))
}

/// Builds weaver's binary for `target`, with cargo-auditable; returns its path.
fn build(root: &Path, target_dir: &Path, target: &Target, epoch: i64) -> Result<PathBuf> {
    if run(Command::new("cargo").args(["auditable", "--version"])).is_err() {
        return Err(
            "cargo-auditable is not installed (it embeds the dependency list): cargo install cargo-auditable --locked"
                .into(),
        );
    }
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    // Paths rustc would write into the binary (panic locations, debug info) made the same on
    // every machine.
    let paths = [(root, "/weaver"), (cargo_home.as_path(), "/cargo"), (target_dir, "/target")];
    let remap = |flag: &str| {
        paths.iter().map(|(from, to)| format!("{flag}{}={to}", from.display())).collect::<Vec<_>>().join(" ")
    };
    let rustflags = format!("{} {}", target.rustflags, remap("--remap-path-prefix="));
    // The C the -sys crates compile (aws-lc, libgit2, mimalloc) writes its paths too (`__FILE__`).
    let cflags = remap("-ffile-prefix-map=");
    let status = Command::new("cargo")
        .current_dir(root)
        .args(["auditable", "build", "--release", "--locked", "--bin", "weaver", "--target", target.triple])
        .arg("--target-dir")
        .arg(target_dir)
        .env("RUSTFLAGS", rustflags.trim())
        .env("CFLAGS", &cflags)
        .env("CXXFLAGS", &cflags)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {} failed ({status})", target.triple));
    }
    Ok(target_dir.join(target.triple).join("release/weaver"))
}

fn cargo_metadata(root: &Path, platform: Option<&str>) -> Result<Value> {
    let mut command = Command::new("cargo");
    command.current_dir(root).args(["metadata", "--format-version", "1", "--locked"]);
    if let Some(platform) = platform {
        command.args(["--filter-platform", platform]);
    }
    serde_json::from_str(&run(&mut command)?).map_err(|e| format!("cargo metadata: {e}"))
}

fn package<'m>(metadata: &'m Value, name: &str) -> Result<&'m Value> {
    let packages = metadata["packages"].as_array().into_iter().flatten();
    packages
        .filter(|p| p["source"].is_null())
        .find(|p| p["name"] == name)
        .ok_or_else(|| format!("cargo metadata has no package {name}"))
}

/// The CycloneDX 1.5 SBOM of weaver's binary for `triple`: every package its normal
/// dependencies reach (build and dev dependencies are not in the binary), each with its
/// crates.io checksum from Cargo.lock and its license.
fn sbom(root: &Path, triple: &str, version: &str, epoch: i64) -> Result<Value> {
    let metadata = cargo_metadata(root, Some(triple))?;
    let lock: toml::Table = std::fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?
        .parse()
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let checksums: BTreeMap<(String, String), String> = lock["package"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let (name, version, checksum) = (p.get("name")?, p.get("version")?, p.get("checksum")?);
            Some(((name.as_str()?.to_string(), version.as_str()?.to_string()), checksum.as_str()?.to_string()))
        })
        .collect();
    let packages: BTreeMap<&str, &Value> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["id"].as_str().unwrap_or_default(), p))
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| (n["id"].as_str().unwrap_or_default(), n))
        .collect();
    let weaver = package(&metadata, "weaver")?["id"].as_str().unwrap_or_default();
    // Each reached package's normal dependencies, from weaver down.
    // A proc-macro runs in the compiler: neither it nor what only it depends on is linked.
    let proc_macro = |id: &str| {
        packages.get(id).is_some_and(|p| {
            let kinds =
                p["targets"].as_array().into_iter().flatten().flat_map(|t| t["kind"].as_array().into_iter().flatten());
            kinds.clone().count() > 0 && kinds.into_iter().all(|k| k == "proc-macro")
        })
    };
    let normal = |node: &Value| -> Vec<String> {
        let deps = node["deps"].as_array().into_iter().flatten();
        deps.filter(|d| d["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null()))
            .filter_map(|d| d["pkg"].as_str().map(str::to_string))
            .filter(|id| !proc_macro(id))
            .collect()
    };
    let mut reached: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = vec![weaver.to_string()];
    while let Some(id) = queue.pop() {
        if reached.contains_key(&id) {
            continue;
        }
        let deps = nodes.get(id.as_str()).map(|n| normal(n)).unwrap_or_default();
        queue.extend(deps.iter().cloned());
        reached.insert(id, deps);
    }
    let purl = |p: &Value| {
        format!("pkg:cargo/{}@{}", p["name"].as_str().unwrap_or_default(), p["version"].as_str().unwrap_or_default())
    };
    let reference = |id: &str| packages.get(id).map(|p| purl(p)).unwrap_or_else(|| id.to_string());
    let mut components: Vec<Value> = reached
        .keys()
        .filter(|id| id.as_str() != weaver)
        .filter_map(|id| packages.get(id.as_str()))
        .map(|p| {
            let (name, version) = (p["name"].as_str().unwrap_or_default(), p["version"].as_str().unwrap_or_default());
            let mut component =
                json!({"type": "library", "bom-ref": purl(p), "name": name, "version": version, "purl": purl(p)});
            if let Some(checksum) = checksums.get(&(name.to_string(), version.to_string())) {
                component["hashes"] = json!([{"alg": "SHA-256", "content": checksum}]);
            }
            if let Some(license) = p["license"].as_str() {
                component["licenses"] = json!([{"expression": license}]);
            }
            component
        })
        .collect();
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let dependencies: Vec<Value> = reached
        .iter()
        .map(|(id, deps)| {
            let mut on: Vec<String> = deps.iter().map(|d| reference(d)).collect();
            on.sort();
            on.dedup();
            json!({"ref": reference(id), "dependsOn": on})
        })
        .collect();
    let time = jiff::Timestamp::from_second(epoch).map_err(|e| e.to_string())?;
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "tools": {"components": [{"type": "application", "name": "cargo xtask release"}]},
            "component": {
                "type": "application", "bom-ref": format!("pkg:cargo/weaver@{version}"), "name": "weaver",
                "version": version, "purl": format!("pkg:cargo/weaver@{version}"),
                "properties": [{"name": "cdx:rustc:target", "value": triple}],
            },
        },
        "components": components,
        "dependencies": dependencies,
    });
    // A serial number of the whole document (its binary's version and target among it): the
    // same build gives the same, another binary another.
    let digest = hex::encode(Sha256::digest(serde_json::to_vec(&document).expect("JSON serializes")));
    let serial = format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    );
    document["serialNumber"] = json!(serial);
    Ok(document)
}

/// One platform's image: the binary at `/weaver`, run as 65532, as the Dockerfile builds it.
struct Image {
    platform: (&'static str, &'static str),
    built: oci::Built,
}

fn image(binary: &[u8], platform: (&'static str, &'static str), version: &str, epoch: i64) -> Result<Image> {
    let layer = oci::pack_files(&BTreeMap::from([("weaver".to_string(), (binary.to_vec(), 0o755))]));
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice()).read_to_end(&mut tar).map_err(|e| e.to_string())?;
    let created = jiff::Timestamp::from_second(epoch).map_err(|e| e.to_string())?.to_string();
    let config = json!({
        "created": created,
        "architecture": platform.1,
        "os": platform.0,
        "config": {"User": "65532:65532", "Entrypoint": ["/weaver"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex::encode(Sha256::digest(&tar)))]},
    });
    let config = serde_json::to_vec(&config).expect("JSON serializes");
    let annotations = BTreeMap::from([
        ("org.opencontainers.image.version".to_string(), version.to_string()),
        ("org.opencontainers.image.title".to_string(), "weaver".to_string()),
    ]);
    let built = oci::build_manifest((oci::IMAGE_CONFIG, config), vec![(oci::IMAGE_LAYER, layer)], annotations);
    Ok(Image { platform, built })
}

/// The image index: one manifest per platform.
fn image_index(images: &[Image], version: &str) -> Vec<u8> {
    let manifests: Vec<Value> = images
        .iter()
        .map(|image| {
            json!({
                "mediaType": oci::MANIFEST,
                "digest": image.built.digest,
                "size": image.built.manifest.len(),
                "platform": {"architecture": image.platform.1, "os": image.platform.0},
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": oci::INDEX,
        "manifests": manifests,
        "annotations": {"org.opencontainers.image.version": version},
    });
    serde_json::to_vec(&index).expect("JSON serializes")
}

/// The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) as a tar: its
/// `index.json` names the image index `<version>`.
fn oci_layout(index: &[u8], images: &[Image], version: &str) -> Result<Vec<u8>> {
    let mut blobs: BTreeMap<String, &[u8]> = BTreeMap::new();
    blobs.insert(digest_hex(index), index);
    for image in images {
        blobs.insert(digest_hex(&image.built.manifest), &image.built.manifest);
        for blob in &image.built.blobs {
            blobs.insert(digest_hex(blob), blob);
        }
    }
    let root = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": oci::INDEX,
            "digest": format!("sha256:{}", digest_hex(index)),
            "size": index.len(),
            // The tag, as OCI names it; and the whole name, which `ctr images import` gives it.
            "annotations": {
                "org.opencontainers.image.ref.name": version,
                "io.containerd.image.name": format!("weaver:{version}"),
            },
        }],
    });
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    files.insert("index.json".into(), serde_json::to_vec(&root).expect("JSON serializes"));
    for (digest, bytes) in blobs {
        files.insert(format!("blobs/sha256/{digest}"), bytes.to_vec());
    }
    let mut archive = tar::Builder::new(Vec::new());
    for (path, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        archive.append_data(&mut header, path, bytes.as_slice()).map_err(|e| e.to_string())?;
    }
    archive.into_inner().map_err(|e| e.to_string())
}

fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The chart packaged as `helm package` lays it out (`weaver/…`), and its config for a push.
struct Chart {
    archive: Vec<u8>,
    /// Chart.yaml as JSON: the config `helm push` writes.
    config: Vec<u8>,
}

fn chart(dir: &Path) -> Result<Chart> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).expect("below the chart").to_string_lossy().replace('\\', "/");
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.insert(format!("weaver/{relative}"), (bytes, 0o644));
        }
    }
    chart_of(&oci::pack_files(&files))
}

/// A packaged chart, its config read from its `weaver/Chart.yaml`.
fn chart_of(archive: &[u8]) -> Result<Chart> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(archive).read_to_end(&mut tar).map_err(|e| format!("the chart's archive: {e}"))?;
    let files = tar_files(&tar)?;
    let metadata = files.get("weaver/Chart.yaml").ok_or("the chart has no weaver/Chart.yaml")?;
    let metadata: Value = serde_saphyr::from_slice(metadata).map_err(|e| format!("weaver/Chart.yaml: {e}"))?;
    Ok(Chart { archive: archive.to_vec(), config: serde_json::to_vec(&metadata).expect("JSON serializes") })
}

/// `SHA256SUMS` of every file in `out`, by name, as `sha256sum` writes and checks it.
fn sums(out: &Path) -> Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| format!("{}: {e}", out.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name != SUMS)
        .collect();
    names.sort();
    let mut text = String::new();
    for name in names {
        let bytes = std::fs::read(out.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        text.push_str(&format!("{}  {name}\n", digest_hex(&bytes)));
    }
    Ok(text)
}

/// Pushes the artifacts in `dir`, each checked against its `SHA256SUMS` first: the image layout's
/// blobs, each platform's manifest by digest and the index at the version's tag; the chart with
/// helm's media types.
fn push(dir: &Path, registry: &str, plain_http: bool) -> Result<()> {
    let sums = std::fs::read_to_string(dir.join(SUMS)).map_err(|e| format!("{}/{SUMS}: {e}", dir.display()))?;
    let read = |name: &str| -> Result<Vec<u8>> {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{}/{name}: {e}", dir.display()))?;
        match sums.lines().any(|line| line == format!("{}  {name}", digest_hex(&bytes))) {
            true => Ok(bytes),
            false => Err(format!("{}/{name} is not what SHA256SUMS says: nothing was pushed", dir.display())),
        }
    };
    let name_of = |suffix: &str| {
        sums.lines().filter_map(|l| l.split_once("  ")).map(|(_, name)| name.to_string()).find(|n| n.ends_with(suffix))
    };
    let chart_name = name_of(".tgz").ok_or("SHA256SUMS names no chart (weaver-<version>.tgz)")?;
    let version = chart_name.trim_start_matches("weaver-").trim_end_matches(".tgz").to_string();
    let chart = chart_of(&read(&chart_name)?)?;
    let machine =
        weaver_source::charts::http::Machine::load(|key| std::env::var(key).ok()).map_err(|e| e.to_string())?;
    if let Some(layout) = name_of("-image.tar") {
        let files: BTreeMap<String, Vec<u8>> = tar_files(&read(&layout)?)?;
        let blob = |digest: &str| -> Result<Vec<u8>> {
            let hex = digest.trim_start_matches("sha256:");
            files.get(&format!("blobs/sha256/{hex}")).cloned().ok_or(format!("{layout} has no blob {digest}"))
        };
        let root: Value = serde_json::from_slice(files.get("index.json").ok_or(format!("{layout} has no index.json"))?)
            .map_err(|e| format!("{layout}: index.json: {e}"))?;
        let index = blob(root["manifests"][0]["digest"].as_str().unwrap_or_default())?;
        let artifact = oci::Artifact::parse(&format!("{registry}/weaver:{version}"), plain_http, "REGISTRY")
            .map_err(|e| e.to_string())?;
        let mut connection = artifact.connect(&machine).map_err(|e| e.to_string())?;
        let parsed: Value = serde_json::from_slice(&index).map_err(|e| format!("{layout}: its index: {e}"))?;
        for platform in parsed["manifests"].as_array().into_iter().flatten() {
            let digest = platform["digest"].as_str().unwrap_or_default();
            let manifest = blob(digest)?;
            let descriptors: Value =
                serde_json::from_slice(&manifest).map_err(|e| format!("{layout}: {digest}: {e}"))?;
            let parts =
                std::iter::once(&descriptors["config"]).chain(descriptors["layers"].as_array().into_iter().flatten());
            let blobs = parts.map(|d| blob(d["digest"].as_str().unwrap_or_default())).collect::<Result<Vec<_>>>()?;
            oci::push_blobs(&mut connection, &artifact, &blobs).map_err(|e| e.to_string())?;
            oci::put_manifest(&mut connection, &artifact, digest, oci::MANIFEST, &manifest)
                .map_err(|e| e.to_string())?;
        }
        oci::put_manifest(&mut connection, &artifact, &version, oci::INDEX, &index).map_err(|e| e.to_string())?;
        eprintln!("pushed {artifact} (sha256:{})", digest_hex(&index));
    }
    let artifact = oci::Artifact::parse(&format!("{registry}/charts/weaver:{version}"), plain_http, "REGISTRY")
        .map_err(|e| e.to_string())?;
    let mut connection = artifact.connect(&machine).map_err(|e| e.to_string())?;
    let built = oci::build_manifest(
        (oci::CHART_CONFIG, chart.config),
        vec![(oci::CHART_LAYER, chart.archive)],
        BTreeMap::new(),
    );
    let digest = oci::push_artifact(&mut connection, &artifact, &built).map_err(|e| e.to_string())?;
    eprintln!("pushed oci://{}/{}:{version} ({digest})", artifact.registry, artifact.repository);
    Ok(())
}

/// The files of a plain tar, by path.
fn tar_files(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        files.insert(path, bytes);
    }
    Ok(files)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map(drop).map_err(|e| format!("{} → {}: {e}", from.display(), to.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(value).expect("JSON serializes");
    text.push(b'\n');
    text
}

/// What `command` prints, or why it failed.
fn run(command: &mut Command) -> Result<String> {
    let output = command.output().map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if !output.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of a tar (gzipped or not): path, mode, time, owner, bytes.
    fn entries(archive: &[u8]) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
        let mut plain = archive.to_vec();
        if archive.starts_with(&[0x1f, 0x8b]) {
            plain.clear();
            flate2::read::GzDecoder::new(archive).read_to_end(&mut plain).unwrap();
        }
        let mut tar = tar::Archive::new(plain.as_slice());
        tar.entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                (path, header.mode().unwrap(), header.mtime().unwrap(), header.uid().unwrap(), bytes)
            })
            .collect()
    }

    /// Every workflow `weaver init` writes and every example of examples/ci downloads a binary
    /// of a configured target, or the checksums, as `release` names them: a template naming an
    /// artifact no release makes fails its users' first run.
    #[test]
    fn ci_templates_download_artifacts_a_release_makes() {
        let version = env!("CARGO_PKG_VERSION");
        let mut made: Vec<String> = TARGETS.iter().map(|t| binary_name(version, t.triple)).collect();
        made.push(SUMS.to_string());
        let mut templates: Vec<PathBuf> = Vec::new();
        for dir in ["crates/engine/src/action/init/github", "examples/ci"] {
            for entry in std::fs::read_dir(root().join(dir)).unwrap() {
                templates.push(entry.unwrap().path());
            }
        }
        // The init workflow's version is filled in by init; the examples name theirs.
        let prefix = "/releases/download/v${WEAVER_VERSION}/";
        for template in templates {
            let text = std::fs::read_to_string(&template).unwrap();
            let downloads: Vec<String> = text
                .match_indices(prefix)
                .map(|(at, _)| {
                    let rest = &text[at + prefix.len()..];
                    let name = &rest[..rest.find(['"', ' ', '\n']).unwrap_or(rest.len())];
                    name.replace("${WEAVER_VERSION}", version)
                })
                .collect();
            assert!(
                downloads.contains(&binary_name(version, "x86_64-unknown-linux-gnu")),
                "{} downloads no binary of x86_64 Linux: {downloads:?}",
                template.display()
            );
            for name in &downloads {
                assert!(made.contains(name), "{}: {name} is no artifact of a release: {made:?}", template.display());
            }
        }
    }

    #[test]
    fn the_chart_is_packaged_as_helm_lays_it_out_the_same_bytes_each_time() {
        let dir = root().join("charts/weaver");
        let (first, second) = (chart(&dir).unwrap(), chart(&dir).unwrap());
        assert!(first.archive == second.archive, "the same files give the same archive");
        let entries = entries(&first.archive);
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert!(paths.is_sorted(), "{paths:?}");
        assert!(paths.contains(&"weaver/Chart.yaml") && paths.contains(&"weaver/values.yaml"), "{paths:?}");
        assert!(paths.iter().all(|p| p.starts_with("weaver/")), "{paths:?}");
        assert!(entries.iter().all(|e| e.1 == 0o644 && e.2 == 0 && e.3 == 0));
        let config: Value = serde_json::from_slice(&first.config).unwrap();
        assert_eq!(config["name"], "weaver");
        assert_eq!(config["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_image_layout_holds_every_blob_its_indexes_and_manifest_name() {
        let binary = b"\x7fELF not really".to_vec();
        let images = vec![image(&binary, ("linux", "amd64"), "9.9.9", 1_700_000_000).unwrap()];
        let index = image_index(&images, "9.9.9");
        let layout = oci_layout(&index, &images, "9.9.9").unwrap();
        assert_eq!(layout, oci_layout(&image_index(&images, "9.9.9"), &images, "9.9.9").unwrap());
        let files: BTreeMap<String, Vec<u8>> = entries(&layout).into_iter().map(|e| (e.0, e.4)).collect();
        assert_eq!(files["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        let blob = |digest: &str| -> Vec<u8> {
            let hex = digest.strip_prefix("sha256:").unwrap();
            let bytes = files.get(&format!("blobs/sha256/{hex}")).unwrap_or_else(|| panic!("no blob {digest}"));
            assert_eq!(digest_hex(bytes), hex, "a blob is named by its digest");
            bytes.clone()
        };
        let root: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        assert_eq!(root["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "9.9.9");
        let index: Value = serde_json::from_slice(&blob(root["manifests"][0]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(index["mediaType"], oci::INDEX);
        assert_eq!(index["manifests"][0]["platform"], json!({"architecture": "amd64", "os": "linux"}));
        let manifest: Value = serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
        let config: Value = serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["config"], json!({"User": "65532:65532", "Entrypoint": ["/weaver"]}));
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
        let layer = entries(&layer);
        assert_eq!(layer.len(), 1);
        assert_eq!((layer[0].0.as_str(), layer[0].1, layer[0].2, layer[0].4.clone()), ("weaver", 0o755, 0, binary));
    }

    #[test]
    fn sha256sums_is_what_sha256sum_checks() {
        let dir = std::env::temp_dir().join(format!("xtask-sums-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir.join("b.tgz"), b"chart").unwrap();
        write(&dir.join("a"), b"binary").unwrap();
        let text = sums(&dir).unwrap();
        let names: Vec<&str> = text.lines().map(|l| l.split("  ").nth(1).unwrap()).collect();
        assert_eq!(names, ["a", "b.tgz"]);
        write(&dir.join("SHA256SUMS"), text.as_bytes()).unwrap();
        let checked = Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&dir).output().unwrap();
        assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stdout));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_sbom_lists_what_the_binary_links_with_its_checksums_and_the_graph() {
        let sbom = sbom(&root(), "x86_64-unknown-linux-gnu", "9.9.9", 0).unwrap();
        assert_eq!(sbom["metadata"]["component"]["purl"], "pkg:cargo/weaver@9.9.9");
        let components = sbom["components"].as_array().unwrap();
        let named = |name: &str| components.iter().find(|c| c["name"] == name);
        let kube = named("kube").expect("kube is linked");
        assert_eq!(kube["hashes"][0]["alg"], "SHA-256");
        assert!(named("weaver-core").expect("a workspace crate").get("hashes").is_none());
        assert!(named("weaver").is_none(), "the binary is the SBOM's subject, not a component of it");
        assert!(named("serde_derive").is_none(), "a proc-macro runs in the compiler, not in the binary");
        let other = super::sbom(&root(), "x86_64-unknown-linux-gnu", "9.9.10", 0).unwrap();
        assert_ne!(sbom["serialNumber"], other["serialNumber"], "another binary, another serial number");
        // Dev-only dependencies are not in the binary.
        assert!(named("weaver-test-apiserver").is_none(), "a dev-dependency listed");
        let refs: Vec<&str> =
            sbom["dependencies"].as_array().unwrap().iter().map(|d| d["ref"].as_str().unwrap()).collect();
        for component in components {
            assert!(refs.contains(&component["bom-ref"].as_str().unwrap()), "{component} has no entry in the graph");
        }
        assert_eq!(sbom, super::sbom(&root(), "x86_64-unknown-linux-gnu", "9.9.9", 0).unwrap(), "the same each time");
    }

    #[test]
    fn out_is_emptied_only_when_it_holds_a_release() {
        let dir = std::env::temp_dir().join(format!("xtask-out-{}", std::process::id()));
        let checkout = dir.join("checkout");
        std::fs::create_dir_all(checkout.join(".git")).unwrap();
        let refused = empty_out(&checkout, &checkout).unwrap_err();
        assert!(refused.contains("holds the checkout"), "{refused}");
        assert!(empty_out(&checkout, &dir).unwrap_err().contains("holds the checkout"));
        let other = dir.join("notes");
        std::fs::create_dir_all(&other).unwrap();
        write(&other.join("todo.txt"), b"mine").unwrap();
        assert!(empty_out(&checkout, &other).unwrap_err().contains("not a release's"));
        assert!(other.join("todo.txt").exists(), "nothing removed");
        let former = dir.join("release");
        std::fs::create_dir_all(&former).unwrap();
        write(&former.join("SHA256SUMS"), b"").unwrap();
        write(&former.join("weaver-0.0.1.tgz"), b"old").unwrap();
        empty_out(&checkout, &former).unwrap();
        assert_eq!(std::fs::read_dir(&former).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
