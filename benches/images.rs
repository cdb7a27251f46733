//! Image updates (issue 72): what an interval of `imageUpdates` costs, in-process as the
//! controller runs it (one `Registries` kept between intervals), against a registry on loopback
//! that answers as the distribution API does: `GET /v2/<name>/tags/list` whole, with an `ETag`
//! (`304` to a matching `If-None-Match`), and `HEAD /v2/<name>/manifests/<tag>` with
//! `Docker-Content-Digest`. Kept by this bench: Debian's docker-registry cannot hold 200,000
//! manifests in reasonable time, and sends no ETag.
//! 1. 200 repositories (`WEAVER_BENCH_REPOSITORIES`) × 1,000 tags (`WEAVER_BENCH_TAGS`), one
//!    environment subscribing to each with a semver policy: the first interval (everything
//!    listed), then intervals with nothing new: requests (target: one per repository), CPU
//!    (target: ≤ 0.05 cores at a 5-minute interval, i.e. ≤ 15 s of CPU per interval) and memory
//!    (target: ≤ 100 MB resident).
//! 2. The same with one new tag in each repository: time to the commit and requests, as the
//!    controller's `images update` runs: the check, the plan of the environment with the new
//!    pins against the API server (the in-process fake, or `WEAVER_BENCH_KUBECONFIG`'s), and the
//!    commit of `promotions/dev.yaml`.
//!
//! 3. With `verify` (issue 92): a second environment subscribing to the same repositories with
//!    `verify.publicKeyRef`, each repository's newest tag signed in cosign's format (its
//!    `sha256-DIGEST.sig` manifest and payload served): the first interval, which checks every
//!    signature, and intervals with nothing new, against the same without `verify`.
//!
//! Every figure with the process's CPU (getrusage) and resident memory (VmRSS, VmHWM); the
//! registry runs in a process of its own (this bench, started again), so they are weaver's alone.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::Digest;

mod support;

// The allocator of weaver's binary, whose controller this stands for.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use weaver_engine::action::fleet::EnvironmentSelection;
use weaver_engine::action::images::{CheckOptions, UpdateOptions, check, update};
use weaver_engine::action::promote::Proposal;
use weaver_source::charts::http::Machine;
use weaver_source::images::Registries;
use weaver_test_support::cosign::{self, TestSigner};
use weaver_test_support::git;
use weaver_verify::cosign::signature_tag;

/// What the registry's signing key is derived from.
const SIGNER: &str = "the bench's release team";

/// A repository's tag list as served: (ETag, body).
type List = (String, Vec<u8>);

/// The registry's answers: every repository has the same `tags` tags, and `2.0.0` too once the
/// marker file exists (the bench's process creates it: the registry runs in a process of its
/// own, so that the figures are weaver's alone).
struct Served {
    tags: usize,
    marker: std::path::PathBuf,
    /// Kept by (with the new tag, repository).
    lists: RwLock<HashMap<(bool, String), List>>,
    /// Signs each repository's newest tag.
    signer: TestSigner,
    /// Payloads served as blobs, by digest.
    payloads: RwLock<HashMap<String, Vec<u8>>>,
}

/// The digest the registry answers for a tag's manifest: the hash of the path asked.
fn digest_of(repository: &str, tag: &str) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(format!("/v2/{repository}/manifests/{tag}").as_bytes())))
}

impl Served {
    fn list(&self, repository: &str) -> List {
        let new = self.marker.exists();
        if let Some(found) = self.lists.read().unwrap().get(&(new, repository.to_string())) {
            return found.clone();
        }
        let mut tags: Vec<String> = (0..self.tags).map(|t| format!("1.{}.{}", t / 100, t % 100)).collect();
        if new {
            tags.push("2.0.0".to_string());
        }
        // The newest tag is signed.
        let newest = tags.last().cloned().unwrap_or_default();
        tags.push(signature_tag(&digest_of(repository, &newest)));
        let body = serde_json::to_vec(&serde_json::json!({"name": repository, "tags": tags})).unwrap();
        let etag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&body))[..16]);
        self.lists.write().unwrap().insert((new, repository.to_string()), (etag.clone(), body.clone()));
        (etag, body)
    }
}

fn serve(served: Arc<Served>, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut if_none_match = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("if-none-match")
            {
                if_none_match = value.trim().to_string();
            }
        }
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let answer = match path.strip_prefix("/v2/").and_then(|p| p.split_once("/tags/list")) {
            Some((repository, _)) => match served.list(repository) {
                (etag, _) if etag == if_none_match => {
                    format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n").into_bytes()
                }
                (etag, body) => {
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    answer.extend_from_slice(&body);
                    answer
                }
            },
            None if method == "HEAD" && path.contains("/manifests/") => {
                let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(path.as_bytes())));
                format!("HTTP/1.1 200 OK\r\nDocker-Content-Digest: {digest}\r\nContent-Length: 0\r\n\r\n").into_bytes()
            }
            // A signature manifest: of the digest its tag names, signed.
            None if path.ends_with(".sig") && path.contains("/manifests/sha256-") => {
                let (repository, tag) = path.trim_start_matches("/v2/").split_once("/manifests/").unwrap();
                let digest = tag.trim_end_matches(".sig").replacen('-', ":", 1);
                let payload = served.signer.payload(&format!("registry.bench/{repository}"), &digest);
                let payload_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&payload)));
                let manifest = cosign::signature_manifest(
                    ("sha256:00", 2),
                    &[(payload_digest.clone(), payload.len(), served.signer.sign(&payload))],
                );
                served.payloads.write().unwrap().insert(payload_digest, payload);
                let body = serde_json::to_vec(&manifest).unwrap();
                let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                answer.extend_from_slice(&body);
                answer
            }
            None if path.contains("/blobs/") => {
                match served.payloads.read().unwrap().get(path.rsplit('/').next().unwrap()) {
                    Some(body) => {
                        let mut answer =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        answer.extend_from_slice(body);
                        answer
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                }
            }
            None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        if stream.write_all(&answer).is_err() {
            return;
        }
    }
}

fn cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// VmRSS and VmHWM, in MiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The registry's process: serves on a loopback port it prints, until its input closes.
fn registry(tags: usize, marker: std::path::PathBuf) {
    let served = Arc::new(Served {
        tags,
        marker,
        lists: RwLock::default(),
        signer: TestSigner::new(SIGNER),
        payloads: RwLock::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    for stream in listener.incoming().flatten() {
        let served = served.clone();
        std::thread::spawn(move || serve(served, stream));
    }
}

fn main() {
    let (repositories, tags) = (number("WEAVER_BENCH_REPOSITORIES", 200), number("WEAVER_BENCH_TAGS", 1000));
    if let Ok(marker) = std::env::var("WEAVER_BENCH_IMAGES_REGISTRY") {
        return registry(tags, marker.into());
    }
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("new-tag");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("WEAVER_BENCH_IMAGES_REGISTRY", &marker)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let port: u16 = first.trim().parse().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let full = repo.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    };
    write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n");
    // A Deployment per repository, each running its image: what the pins are laid over.
    let mut deployments = String::new();
    for r in 0..repositories {
        deployments.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: r{r}\nspec:\n  selector: {{matchLabels: {{app: r{r}}}}}\n  \
             template:\n    metadata: {{labels: {{app: r{r}}}}}\n    spec:\n      containers:\n        - name: r{r}\n          image: 127.0.0.1:{port}/shop/r{r}:1.0.0\n"
        ));
    }
    write("charts/app/templates/deployments.yaml", &deployments);
    let mut environment = String::from("namespace: apps\nreleases:\n  - name: app\n    chart: app\nimageUpdates:\n");
    for r in 0..repositories {
        environment.push_str(&format!(
            "  - {{image: '127.0.0.1:{port}/shop/r{r}', releases: [app], plainHttp: true, policy: {{semver: '>=1'}}}}\n"
        ));
    }
    write("environments/dev.yaml", &environment);
    // The same subscriptions, verified.
    let verified = environment
        .replace("policy: {semver: '>=1'}}", "policy: {semver: '>=1'}, verify: {publicKeyRef: keys/cosign.pub}}");
    write("environments/signed.yaml", &verified);
    write("keys/cosign.pub", &TestSigner::new(SIGNER).public_pem());
    // Committed: the controller reads commits, and each update commits on the last.
    let git = git::init(repo.path());
    git::commit_all(&git, "the subscriptions");
    let (fake, kubeconfig) = support::cluster();
    let options = CheckOptions {
        repo: repo.path().to_path_buf(),
        environments: EnvironmentSelection { envs: vec!["dev".into()], ..Default::default() },
        rev: Some("HEAD".into()),
        concurrency: 8,
    };
    let registries =
        std::sync::Arc::new(Registries::new(Machine::anonymous(), "none (the bench's registry is anonymous)"));
    let (rss, _) = memory();
    println!("  before the first interval: RSS {rss} MiB (the binary's pages and the runtime)");
    println!(
        "image updates: {repositories} repositories × {tags} tags, one environment subscribing to each (semver), registry on loopback"
    );
    let interval = |label: &str| {
        let (before_cpu, started) = (cpu(), Instant::now());
        let checks = check(&options, &registries).unwrap();
        let wall = started.elapsed();
        let spent = cpu() - before_cpu;
        let (rss, hwm) = memory();
        let new = checks.environments[0].images.iter().filter(|i| i.new).count();
        println!(
            "  {label:<38} {:>7.1} ms wall, {:>7.1} ms CPU, {:>4} requests, {new:>3} new, RSS {rss} MiB (peak {hwm} MiB)",
            wall.as_secs_f64() * 1000.0,
            spent.as_secs_f64() * 1000.0,
            checks.requests,
        );
        spent
    };
    interval("first interval (all listed)");
    let update_options = UpdateOptions {
        environment: "dev".into(),
        proposal: Proposal {
            repo: repo.path().to_path_buf(),
            connect: weaver_cluster::ConnectOptions {
                kubeconfig: Some(kubeconfig.clone().into()),
                context: None,
                request_timeout: Duration::from_secs(30),
                retry_budget: weaver_cluster::DEFAULT_RETRY_BUDGET,
                given: None,
            },
            concurrency: 8,
            keys: weaver_engine::action::Keys::Search(None),
            dry_run: false,
            branch: None,
            rev: None,
            author: Some(("bench".into(), "bench@weaver.invalid".into())),
            signing_key: None,
            charts: weaver_source::charts::Archives::Machine,
            limits: Default::default(),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let redactor = weaver_secrets::Redactor::new();
    let cx = || weaver_engine::action::Context::new(&redactor, &|_| {});
    let updated = |label: &str| {
        let (before_cpu, started) = (cpu(), Instant::now());
        let done = runtime.block_on(update(&update_options, registries.clone(), cx())).unwrap();
        let (wall, spent) = (started.elapsed(), cpu() - before_cpu);
        let (branch, _) = done.commit.expect("a commit of the new pins");
        let (rss, hwm) = memory();
        println!(
            "  {label:<38} {:>7.1} ms wall, {:>7.1} ms CPU, {:>4} requests, {:>3} pins, RSS {rss} MiB (peak {hwm} MiB)",
            wall.as_secs_f64() * 1000.0,
            spent.as_secs_f64() * 1000.0,
            done.requests,
            done.changes.len(),
        );
        // The next interval starts from this commit, as the controller's next starts from what
        // it pushed.
        git.set_head(&format!("refs/heads/{branch}")).unwrap();
    };
    let memory_too = if fake.is_some() { " (its memory is in the RSS)" } else { "" };
    println!("  updates (check, plan against {}{memory_too}, commit):", support::cluster_name(&fake, &kubeconfig));
    updated("the newest pinned, to the commit");
    let mut steady = Duration::ZERO;
    for n in 1..=3 {
        steady = steady.max(interval(&format!("interval {n}, nothing new")));
    }
    println!(
        "  nothing new: at most {:.1} ms of CPU per interval: {:.5} cores at a 5-minute interval (target ≤ 0.05)",
        steady.as_secs_f64() * 1000.0,
        steady.as_secs_f64() / 300.0
    );
    std::fs::write(&marker, "").unwrap();
    // As the controller runs it: the update's own check finds the new tags.
    updated("one new tag each, to the commit");
    interval("after it, nothing new");

    // With `verify`, in a process of its own as another EnvironmentSync's would be: every
    // newest tag's signature checked once, then nothing new.
    let signed_options = CheckOptions {
        environments: EnvironmentSelection { envs: vec!["signed".into()], ..Default::default() },
        ..options.clone()
    };
    let signed_registries = Registries::new(Machine::anonymous(), "none (the bench's registry is anonymous)");
    println!("  with verify (each repository's newest tag signed, cosign's format):");
    let signed_interval = |label: &str| {
        let (before_cpu, started) = (cpu(), Instant::now());
        let checks = check(&signed_options, &signed_registries).unwrap();
        let (wall, spent) = (started.elapsed(), cpu() - before_cpu);
        let signed = checks.environments[0].images.iter().filter(|i| i.signed_by.is_some()).count();
        println!(
            "  {label:<38} {:>7.1} ms wall, {:>7.1} ms CPU, {:>4} requests, {signed:>3} signed",
            wall.as_secs_f64() * 1000.0,
            spent.as_secs_f64() * 1000.0,
            checks.requests,
        );
    };
    signed_interval("first interval, signatures checked");
    for n in 1..=3 {
        signed_interval(&format!("interval {n}, nothing new"));
    }
    drop(child.stdin.take());
    let _ = child.wait();
}
