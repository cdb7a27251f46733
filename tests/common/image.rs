//! Container images built from host files, without docker: weaver's with exactly the
//! Dockerfile's content (`FROM scratch`, the binary at /weaver, `USER 65532:65532`,
//! `ENTRYPOINT ["/weaver"]`: no shell, no /tmp, no CA bundle) from the binary under test, and
//! stand-ins for the demo's web app and Redis from Debian's busybox-static and redis-server.
//!
//! The Dockerfile's binary is static (musl); the one under test is linked against glibc, so its
//! image holds precisely the shared libraries it needs and the ELF loader it names (PT_INTERP),
//! at the paths the loader finds them, and nothing else.
//!
//! Each image is a docker-archive (`docker save`'s layout: manifest.json, the config, one layer
//! tar), which `ctr images import`, `kind load image-archive`, `k3d image import` and `minikube
//! image load` read. Entries are sorted, owned by root and dated 0: the same files make the same
//! archive, byte for byte.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the e2e suite's weaver images are named (the tag is the binary's digest): a name no
/// registry serves, so a node runs the image loaded into it or none.
pub const WEAVER_REPOSITORY: &str = "weaver-e2e.local/weaver";

/// The demo's web image (charts/web-app, and environments/values/web-dev.yaml's tag).
pub const SHOP_WEB_NAMES: [&str; 2] = ["ghcr.io/example/shop-web:1.4.2", "ghcr.io/example/shop-web:1.5.0-rc.1"];
/// The demo's Redis image (charts/redis).
pub const REDIS_NAMES: [&str; 1] = ["redis:7.2-alpine"];
/// The web app chart's `port`, where the stand-in's httpd listens.
const SHOP_WEB_PORT: u16 = 8080;

/// An image archive written, and the names it carries.
#[derive(Debug, Clone)]
pub struct Image {
    pub archive: PathBuf,
    pub names: Vec<String>,
}

/// What the layer holds at a path.
enum Entry {
    Directory,
    File { source: PathBuf, mode: u32 },
    Data(Vec<u8>),
}

/// One layer's files and the image's config.
#[derive(Default)]
pub struct ImageBuilder {
    /// Keyed by path without the leading `/`: a directory sorts before what it holds.
    entries: BTreeMap<String, Entry>,
    config: serde_json::Map<String, Value>,
}

impl ImageBuilder {
    fn parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            self.entries.entry(path[..end].to_string()).or_insert(Entry::Directory);
            end += 1;
        }
    }

    fn insert(&mut self, path: &str, entry: Entry) -> &mut Self {
        let path = path.trim_start_matches('/');
        self.parents(path);
        self.entries.insert(path.to_string(), entry);
        self
    }

    /// The host file `source` (its content: symlinks followed) at `path`.
    pub fn file(&mut self, path: &str, source: &Path, mode: u32) -> &mut Self {
        self.insert(path, Entry::File { source: source.to_path_buf(), mode })
    }

    /// A file of `content`, mode 0644.
    pub fn data(&mut self, path: &str, content: &[u8]) -> &mut Self {
        self.insert(path, Entry::Data(content.to_vec()))
    }

    pub fn directory(&mut self, path: &str) -> &mut Self {
        self.insert(path, Entry::Directory)
    }

    /// The ELF loader `binary` names and the shared libraries it loads (as `ldd` lists them), at
    /// the paths they have on this machine; nothing for a static binary.
    pub fn shared_libraries_of(&mut self, binary: &Path) -> Result<&mut Self, String> {
        let Some(loader) = elf_interpreter(binary)? else { return Ok(self) };
        self.file(&loader, Path::new(&loader), 0o755);
        let out = Command::new("ldd").arg(binary).output().map_err(|e| format!("cannot run ldd: {e}"))?;
        let listed = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("ldd {} failed: {listed}{}", binary.display(), String::from_utf8_lossy(&out.stderr)));
        }
        for line in listed.lines().map(str::trim) {
            if line.contains("not found") {
                return Err(format!("ldd {}: {line}", binary.display()));
            }
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, the loader as
            // `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file.
            let path = line.split_once("=> ").map_or(line, |(_, path)| path);
            if let Some((path, _)) = path.split_once(" (").filter(|(path, _)| path.starts_with('/')) {
                self.file(path, Path::new(path), 0o755);
            }
        }
        Ok(self)
    }

    /// A field of the image config's `config` (`User`, `Entrypoint`, `Env`, `WorkingDir`…).
    pub fn config(&mut self, key: &str, value: Value) -> &mut Self {
        self.config.insert(key.to_string(), value);
        self
    }

    /// Writes the docker-archive to `archive`, its image named `names`.
    pub fn write(&self, archive: &Path, names: &[String]) -> std::io::Result<Image> {
        let layer_path = archive.with_extension("layer.tar");
        let mut layer = tar::Builder::new(File::create(&layer_path)?);
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            match entry {
                Entry::Directory => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    layer.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Entry::File { source, mode } => {
                    let file = File::open(source)?;
                    header.set_mode(*mode);
                    header.set_size(file.metadata()?.len());
                    layer.append_data(&mut header, path, file)?;
                }
                Entry::Data(content) => {
                    header.set_mode(0o644);
                    header.set_size(content.len() as u64);
                    layer.append_data(&mut header, path, content.as_slice())?;
                }
            }
        }
        layer.into_inner()?.sync_all()?;
        let diff_id = sha256_of_file(&layer_path)?;

        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        });
        let config = serde_json::to_vec(&config)?;
        let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
        let layer_name = format!("{diff_id}/layer.tar");
        let manifest =
            serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": names, "Layers": [layer_name]}]))?;

        let mut out = tar::Builder::new(File::create(archive)?);
        let mut put = |name: &str, size: u64, content: &mut dyn Read| {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(0);
            header.set_mode(0o644);
            header.set_size(size);
            out.append_data(&mut header, name, content)
        };
        put(&config_name, config.len() as u64, &mut config.as_slice())?;
        put(&layer_name, std::fs::metadata(&layer_path)?.len(), &mut File::open(&layer_path)?)?;
        put("manifest.json", manifest.len() as u64, &mut manifest.as_slice())?;
        out.into_inner()?.sync_all()?;
        std::fs::remove_file(&layer_path)?;
        Ok(Image { archive: archive.to_path_buf(), names: names.to_vec() })
    }
}

/// The hex SHA-256 of a file's content.
pub fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The ELF interpreter (dynamic loader) `binary` names in its PT_INTERP program header; None for
/// a static binary. 64-bit little-endian ELF only, as every binary built here is.
pub fn elf_interpreter(binary: &Path) -> Result<Option<String>, String> {
    let fail = |e: std::io::Error| format!("cannot read {}: {e}", binary.display());
    let mut file = File::open(binary).map_err(fail)?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).map_err(fail)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(format!("{} is not a 64-bit little-endian ELF file", binary.display()));
    }
    let u16_at = |bytes: &[u8], at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u64_at = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (table, entry_size, count) = (u64_at(&header, 0x20), u16_at(&header, 0x36), u16_at(&header, 0x38));
    let mut entry = vec![0u8; usize::from(entry_size)];
    for index in 0..u64::from(count) {
        file.seek(SeekFrom::Start(table + index * u64::from(entry_size))).map_err(fail)?;
        file.read_exact(&mut entry).map_err(fail)?;
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(entry[..4].try_into().unwrap()) == PT_INTERP {
            let mut path = vec![0u8; u64_at(&entry, 0x20) as usize];
            file.seek(SeekFrom::Start(u64_at(&entry, 0x08))).map_err(fail)?;
            file.read_exact(&mut path).map_err(fail)?;
            let path = String::from_utf8_lossy(&path).trim_end_matches('\0').to_string();
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// weaver's image, as the Dockerfile builds it, from `binary`, written into `dir` and named
/// [`WEAVER_REPOSITORY`]`:e2e-<the binary's digest>`, so that a node runs exactly this binary.
pub fn weaver(binary: &Path, dir: &Path) -> Result<Image, String> {
    let digest = sha256_of_file(binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    weaver_named(binary, &dir.join("weaver.tar"), &format!("{WEAVER_REPOSITORY}:e2e-{}", &digest[..12]))
}

/// weaver's image from `binary`, named `name`, written to `archive`.
pub fn weaver_named(binary: &Path, archive: &Path, name: &str) -> Result<Image, String> {
    let mut image = ImageBuilder::default();
    image.file("/weaver", binary, 0o755).shared_libraries_of(binary)?;
    image.config("User", json!("65532:65532")).config("Entrypoint", json!(["/weaver"]));
    image.write(archive, &[name.to_string()]).map_err(|e| format!("cannot write weaver's image: {e}"))
}

/// Debian's busybox-static: a static busybox, or why there is none.
fn static_busybox() -> Result<PathBuf, String> {
    let found = ["/usr/bin/busybox", "/bin/busybox"].into_iter().map(PathBuf::from).find(|p| p.exists());
    let busybox = found.ok_or("no busybox (apt-get install busybox-static)")?;
    match elf_interpreter(&busybox)? {
        None => Ok(busybox),
        Some(_) => Err(format!("{} is not static (apt-get install busybox-static)", busybox.display())),
    }
}

/// The demo's web app: busybox's httpd on the chart's port, answering its probes
/// (/healthz/ready, /healthz/live), as the chart's user 10001, with no shell in its command.
pub fn shop_web(dir: &Path) -> Result<Image, String> {
    let mut image = ImageBuilder::default();
    image
        .file("/bin/busybox", &static_busybox()?, 0o755)
        .data("/www/index.html", b"shop-web stand-in\n")
        .data("/www/healthz/ready", b"ok\n")
        .data("/www/healthz/live", b"ok\n")
        .config("User", json!("10001:10001"))
        .config(
            "Entrypoint",
            json!(["/bin/busybox", "httpd", "-f", "-v", "-p", SHOP_WEB_PORT.to_string(), "-h", "/www"]),
        )
        .config("ExposedPorts", json!({format!("{SHOP_WEB_PORT}/tcp"): {}}));
    let names: Vec<String> = SHOP_WEB_NAMES.iter().map(|n| n.to_string()).collect();
    image.write(&dir.join("shop-web.tar"), &names).map_err(|e| format!("cannot write the web app's image: {e}"))
}

/// The demo's Redis: Debian's redis-server and redis-cli (for the chart's readiness probe) with
/// their libraries; the chart passes the config file as the argument.
pub fn redis(dir: &Path) -> Result<Image, String> {
    let mut image = ImageBuilder::default();
    for tool in ["redis-server", "redis-cli"] {
        let path = PathBuf::from("/usr/bin").join(tool);
        if !path.exists() {
            return Err(format!("no {} (apt-get install redis-server)", path.display()));
        }
        image.file(&path.to_string_lossy(), &path, 0o755).shared_libraries_of(&path)?;
    }
    image
        .directory("/data")
        .config("Env", json!(["PATH=/usr/bin"]))
        .config("WorkingDir", json!("/data"))
        .config("Entrypoint", json!(["/usr/bin/redis-server"]))
        .config("ExposedPorts", json!({"6379/tcp": {}}));
    let names: Vec<String> = REDIS_NAMES.iter().map(|n| n.to_string()).collect();
    image.write(&dir.join("redis.tar"), &names).map_err(|e| format!("cannot write Redis's image: {e}"))
}
