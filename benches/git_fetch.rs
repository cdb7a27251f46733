//! The git source cache fetching a large repository over smart HTTP: 20,000 files in 200
//! directories and 200 commits (each editing 20 files), served by git's own `git http-backend`
//! on loopback. It times a first (shallow) fetch, a fetch with nothing new and an incremental
//! fetch after one more commit, each with the bytes received and the process's peak RSS during
//! it (VmHWM, reset before each). `WEAVER_BENCH_FILES` and `WEAVER_BENCH_COMMITS` scale it.
//! Run with `cargo bench --bench git_fetch`.

use std::time::Instant;

use weaver_source::{Budget, CacheLimits, Credentials, FetchRequest, GitCache, GitRef};
use weaver_test_support::{git, git_http};

fn main() {
    if let Some(missing) = git_http::http_backend_missing() {
        eprintln!("git_fetch: skipped: {missing}");
        return;
    }
    let number = |var: &str, default: usize| std::env::var(var).ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    let (files, commits) = (number("WEAVER_BENCH_FILES", 20_000), number("WEAVER_BENCH_COMMITS", 200));

    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("repo");
    let started = Instant::now();
    let repo = git::init(&work);
    repo.set_head("refs/heads/main").unwrap();
    let path = |i: usize| work.join(format!("dir-{:03}/file-{i:05}.yaml", i % 200));
    for i in 0..files {
        let file = path(i);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content(i, 0)).unwrap();
    }
    git::commit_all(&repo, "files");
    for commit in 1..commits {
        for k in 0..20 {
            let i = (commit * 997 + k * 131) % files;
            std::fs::write(path(i), content(i, commit)).unwrap();
        }
        git::commit_all(&repo, &format!("commit {commit}"));
    }
    println!("generated {files} files, {commits} commits in {:.1} s", started.elapsed().as_secs_f64());

    let server = git_http::GitHttpServer::start(root.path(), git_http::Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let limits = CacheLimits { max_disk_bytes: u64::MAX, max_repositories: usize::MAX };
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(limits)).unwrap();
    let request = FetchRequest {
        url: format!("{}/repo", server.base),
        reference: GitRef::Branch("main".into()),
        credentials: Credentials::None,
        ca_pem: None,
        timeout: std::time::Duration::from_secs(600),
        credential_names: Default::default(),
    };
    let fetch = |what: &str| {
        reset_peak_rss();
        let started = Instant::now();
        let fetched = cache.fetch(&request).unwrap();
        println!(
            "{what:<12} {:>8.3} s  {:>12} bytes received  transferred: {:<5}  peak RSS {:>7.1} MiB",
            started.elapsed().as_secs_f64(),
            fetched.bytes_received,
            fetched.transferred,
            peak_rss_kib() as f64 / 1024.0
        );
    };
    fetch("first");
    fetch("no change");
    for k in 0..20 {
        std::fs::write(path(k * 7), content(k * 7, commits)).unwrap();
    }
    git::commit_all(&repo, "one more");
    fetch("incremental");
}

/// A small YAML file, different for each file and commit.
fn content(i: usize, commit: usize) -> String {
    format!(
        "name: service-{i:05}\nrevision: {commit}\nreplicas: {}\nimage: registry.example.com/team-{}/app:{}.{}.{}\n\
         env:\n  LOG_LEVEL: info\n  CHECKSUM: \"{:016x}\"\n",
        i % 5 + 1,
        i % 17,
        commit / 10,
        commit % 10,
        i % 3,
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ commit as u64
    )
}

/// Resets VmHWM to the current RSS (Linux: `5` to /proc/self/clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
