//! The git source cache (`weaver_source`) against real servers on loopback: git's own
//! http-backend behind a test HTTP(S) server, and OpenSSH's sshd.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use git2::{Oid, Repository, Signature, Time};
use weaver_source::{Budget, CacheLimits, Credentials, FetchFailure, FetchRequest, GitCache, GitRef};

use crate::common::certs::test_certificates;
use crate::common::git::{commit_all, init};
use crate::common::git_http::{GitHttpServer, Options, http_backend_missing};
use crate::common::git_ssh::Sshd;
use crate::common::skip::interop_or_skip;

const UNLIMITED: CacheLimits = CacheLimits { max_disk_bytes: u64::MAX, max_repositories: usize::MAX };
const TIMEOUT: Duration = Duration::from_secs(60);

/// A repository served by the test server: `root/<name>` with a working tree to commit in.
struct Served {
    root: tempfile::TempDir,
    repo: Repository,
    /// The commits made so far, oldest first.
    commits: Vec<Oid>,
}

impl Served {
    fn work(&self) -> PathBuf {
        self.root.path().join("repo")
    }

    /// Writes `file` and commits it.
    fn commit(&mut self, file: &str, content: &str) -> Oid {
        std::fs::write(self.work().join(file), content).unwrap();
        let oid = commit_all(&self.repo, &format!("write {file}"));
        self.commits.push(oid);
        oid
    }
}

/// `repo` with commits c0..c3 on main; an annotated v1.0.0 on c1, lightweight 1.1.0 and
/// an annotated v2.0.0-rc.1 on c2.
fn served() -> Served {
    let root = tempfile::tempdir().unwrap();
    let repo = init(&root.path().join("repo"));
    repo.set_head("refs/heads/main").unwrap();
    let mut served = Served { root, repo, commits: Vec::new() };
    for i in 0..4 {
        served.commit("app.yaml", &format!("version: {i}\n"));
        let commit = served.repo.find_commit(served.commits[i]).unwrap();
        let signature = Signature::new("t", "t@weaver.invalid", &Time::new(1_700_000_000, 0)).unwrap();
        match i {
            1 => {
                served.repo.tag("v1.0.0", commit.as_object(), &signature, "one", false).unwrap();
            }
            2 => {
                served.repo.tag_lightweight("1.1.0", commit.as_object(), false).unwrap();
                served.repo.tag("v2.0.0-rc.1", commit.as_object(), &signature, "rc", false).unwrap();
            }
            _ => {}
        }
    }
    served
}

fn request(url: &str, reference: GitRef) -> FetchRequest {
    FetchRequest {
        url: url.to_string(),
        reference,
        credentials: Credentials::None,
        credential_names: Default::default(),
        ca_pem: None,
        timeout: TIMEOUT,
    }
}

/// The content of `file` at `commit` in the mirror, read as weaver reads a commit.
fn read_at(mirror: &Path, commit: &str, file: &str) -> String {
    let repo = Repository::open_bare(mirror).unwrap();
    let tree = repo.find_commit(Oid::from_str(commit).unwrap()).unwrap().tree().unwrap();
    let blob = tree.get_path(Path::new(file)).unwrap().to_object(&repo).unwrap().peel_to_blob().unwrap();
    String::from_utf8(blob.content().to_vec()).unwrap()
}

fn http_or_skip() -> bool {
    interop_or_skip(http_backend_missing().as_deref())
}

#[test]
fn branches_tags_version_ranges_and_commits_resolve_to_their_commits() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let url = format!("{}/repo", server.base);
    let c = |i: usize| served.commits[i].to_string();

    let main = cache.fetch(&request(&url, GitRef::Branch("main".into()))).unwrap();
    assert_eq!((main.commit.as_str(), main.reference.as_str()), (c(3).as_str(), "refs/heads/main"));
    assert!(main.transferred && main.bytes_received > 0, "{main:?}");
    assert_eq!(read_at(&main.repository, &main.commit, "app.yaml"), "version: 3\n");
    let mirror = Repository::open_bare(&main.repository).unwrap();
    assert!(mirror.is_shallow(), "a branch is fetched at depth 1");
    assert!(mirror.find_commit(served.commits[2]).is_err(), "only the branch's last commit is fetched");
    assert!(main.repository.starts_with(cache_dir.path()) && !main.repository.to_string_lossy().contains("repo"));

    let tag = cache.fetch(&request(&url, GitRef::Tag("v1.0.0".into()))).unwrap();
    assert_eq!((tag.commit.as_str(), tag.reference.as_str()), (c(1).as_str(), "refs/tags/v1.0.0"));
    assert_eq!(read_at(&tag.repository, &tag.commit, "app.yaml"), "version: 1\n");
    assert_eq!(tag.repository, main.repository, "one mirror per URL");

    let semver = cache.fetch(&request(&url, GitRef::Semver(">=1.0.0 <2.0.0".into()))).unwrap();
    assert_eq!((semver.commit.as_str(), semver.reference.as_str()), (c(2).as_str(), "refs/tags/1.1.0"));
    assert_eq!(read_at(&semver.repository, &semver.commit, "app.yaml"), "version: 2\n");
    let prerelease = cache.fetch(&request(&url, GitRef::Semver(">=2.0.0-0".into()))).unwrap();
    assert_eq!(prerelease.reference, "refs/tags/v2.0.0-rc.1");

    // A commit no ref points at: the server refuses it by id, so the history is fetched.
    let old = cache.fetch(&request(&url, GitRef::Commit(c(0)))).unwrap();
    assert_eq!((old.commit.as_str(), old.reference.as_str()), (c(0).as_str(), c(0).as_str()));
    assert!(old.transferred);
    assert_eq!(read_at(&old.repository, &old.commit, "app.yaml"), "version: 0\n");
    // A commit a branch points at, already held: found through the branch, nothing fetched.
    let tip = cache.fetch(&request(&url, GitRef::Commit(c(3)))).unwrap();
    assert_eq!((tip.reference.as_str(), tip.transferred, tip.bytes_received), ("refs/heads/main", false, 0));
}

#[test]
fn the_remotes_branches_are_listed_with_their_commits_from_its_refs_alone() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let older = served.repo.find_commit(served.commits[1]).unwrap();
    served.repo.branch("preview/a", &older, false).unwrap();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let url = format!("{}/repo", server.base);
    let c = |i: usize| served.commits[i].to_string();

    let mut branches = cache.branches(&request(&url, GitRef::Branch("main".into()))).unwrap();
    branches.sort();
    assert_eq!(branches, [("main".to_string(), c(3)), ("preview/a".to_string(), c(1))], "no tag, no HEAD");
    assert_eq!(server.count("POST"), 0, "the refs advertisement alone: {:?}", server.requests.lock().unwrap());
    assert!(std::fs::read_dir(cache_dir.path()).unwrap().all(|entry| entry.unwrap().file_type().unwrap().is_file()));
    // The branch's commit, fetched, says when it was made (test commits are all at one time).
    let preview = cache.fetch(&request(&url, GitRef::Branch("preview/a".into()))).unwrap();
    assert_eq!(preview.commit, c(1));
    assert_eq!(preview.commit_time(), Some(jiff::Timestamp::from_second(older.time().seconds()).unwrap()));
    assert_eq!(older.time().seconds(), 1_700_000_000);
    // Held now: found in the mirror without a request, as the fetch gave it; a commit the
    // mirror lacks, or another URL's, must be fetched.
    let asked = server.requests.lock().unwrap().len();
    let held = cache.held(&request(&url, GitRef::Branch("preview/a".into())), &c(1)).expect("held");
    assert_eq!((held.commit.as_str(), held.reference.as_str()), (c(1).as_str(), "refs/heads/preview/a"));
    assert_eq!((held.repository.as_path(), held.transferred), (preview.repository.as_path(), false));
    assert_eq!(held.commit_time(), preview.commit_time());
    assert!(cache.held(&request(&url, GitRef::Branch("main".into())), &"0".repeat(40)).is_none());
    assert!(cache.held(&request(&format!("{url}-other"), GitRef::Branch("preview/a".into())), &c(1)).is_none());
    assert_eq!(server.requests.lock().unwrap().len(), asked, "no request to the server");
    // The fetch read every branch: a listing since before it asks nothing; since after it, the
    // server is asked again.
    let before_fetch = std::time::Instant::now();
    cache.fetch(&request(&url, GitRef::Branch("main".into()))).unwrap();
    let asked = server.requests.lock().unwrap().len();
    let mut known = cache.branches_since(&request(&url, GitRef::Branch("main".into())), before_fetch).unwrap();
    known.sort();
    assert_eq!(known, branches, "as the fetch's advertisement listed them");
    assert_eq!(server.requests.lock().unwrap().len(), asked, "no request to the server");
    let later = std::time::Instant::now();
    cache.branches_since(&request(&url, GitRef::Branch("main".into())), later).unwrap();
    assert_eq!(server.requests.lock().unwrap().len(), asked + 1, "read again");

    drop(server);
    let down = cache.branches(&request(&url, GitRef::Branch("main".into()))).unwrap_err();
    assert_eq!(down.failure, FetchFailure::Unreachable, "{down}");
}

#[test]
fn a_second_fetch_transfers_nothing_and_a_new_commit_is_fetched() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let main = request(&format!("{}/repo", server.base), GitRef::Branch("main".into()));

    let first = cache.fetch(&main).unwrap();
    assert!(first.transferred);
    let posts = server.count("POST");
    assert!(posts > 0, "{:?}", server.requests.lock().unwrap());

    let again = cache.fetch(&main).unwrap();
    assert_eq!((again.commit.as_str(), again.transferred, again.bytes_received), (first.commit.as_str(), false, 0));
    assert_eq!(server.count("POST"), posts, "no negotiation when the mirror holds the commit");

    let new = served.commit("app.yaml", "version: 4\n");
    let next = cache.fetch(&main).unwrap();
    assert_eq!(next.commit, new.to_string());
    assert!(next.transferred && next.bytes_received > 0);
    assert_eq!(read_at(&next.repository, &next.commit, "app.yaml"), "version: 4\n");
    // An incremental fetch sends no more than about what a first would (the repository is tiny
    // here; benches/git_fetch shows the difference on a large one).
    assert!(next.bytes_received <= first.bytes_received * 2, "{} vs {}", next.bytes_received, first.bytes_received);
}

#[test]
fn a_recent_enough_answer_is_reused_without_reading_the_remote() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let main = request(&format!("{}/repo", server.base), GitRef::Branch("main".into()));
    let first = cache.fetch(&main).unwrap();
    let reads = server.count("GET");
    assert!(reads > 0);

    let new = served.commit("app.yaml", "version: 5\n");
    let recent = cache.fetch_within(&main, Duration::from_secs(60)).unwrap();
    assert_eq!(server.count("GET"), reads, "the remote's refs were read again within the minute");
    assert_eq!((recent.commit.as_str(), recent.transferred), (first.commit.as_str(), false));

    // Other credentials never share an answer: each must pass the server's check itself.
    let mut other = main.clone();
    other.credentials = Credentials::Bearer("another".to_string().into());
    let theirs = cache.fetch_within(&other, Duration::from_secs(60)).unwrap();
    assert_eq!(theirs.commit, new.to_string());
    assert!(server.count("GET") > reads);

    let now = cache.fetch_within(&main, Duration::ZERO).unwrap();
    assert_eq!(now.commit, new.to_string(), "no answer is recent enough within nothing");
}

#[test]
fn an_answer_started_before_the_caller_was_asked_is_not_reused_and_none_is_older_than_one_given() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let main = request(&format!("{}/repo", server.base), GitRef::Branch("main".into()));
    let before = std::time::Instant::now();
    let first = cache.fetch(&main).unwrap();

    // A push, then a caller asked for after the first fetch started: the remote read again.
    let new = served.commit("app.yaml", "version: 5\n");
    let asked = std::time::Instant::now();
    let reads = server.count("GET");
    let fetched = cache.fetch_since(&main, asked).unwrap();
    assert_eq!(fetched.commit, new.to_string(), "a fetch from before the push answered");
    assert!(server.count("GET") > reads);

    // A caller content with anything read since before the first: the newest answer, never the
    // first's older one, and no read of the remote.
    let reads = server.count("GET");
    let content = cache.fetch_since(&main, before).unwrap();
    assert_eq!((content.commit.as_str(), server.count("GET")), (new.to_string().as_str(), reads));
    assert_ne!(content.commit, first.commit);
}

#[test]
fn unknown_refs_are_ref_not_found_and_a_server_down_is_unreachable() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let url = format!("{}/repo", server.base);
    for reference in [
        GitRef::Branch("nope".into()),
        GitRef::Tag("v9.9.9".into()),
        GitRef::Semver(">=5".into()),
        GitRef::Commit("0123456789012345678901234567890123456789".into()),
        GitRef::Commit("abc".into()),
    ] {
        let err = cache.fetch(&request(&url, reference.clone())).unwrap_err();
        assert_eq!(err.failure, FetchFailure::RefNotFound, "{reference:?}: {err}");
        assert_eq!(err.failure, FetchFailure::RefNotFound);
        assert!(err.message.contains(&url), "the message names the URL: {err}");
    }
    let err = cache.fetch(&request(&format!("{}/missing", server.base), GitRef::Branch("main".into()))).unwrap_err();
    assert_eq!(err.failure, FetchFailure::Other, "{err}");
    assert!(err.message.contains("HTTP 404"), "{err}");

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = cache.fetch(&request(&format!("http://127.0.0.1:{port}/repo"), GitRef::Branch("main".into())));
    let err = err.unwrap_err();
    assert_eq!(err.failure, FetchFailure::Unreachable, "{err}");
    assert!(err.message.contains("that the server is up"), "{err}");

    let err = cache.fetch(&request("http://example.com/repo", GitRef::Branch("main".into()))).unwrap_err();
    assert_eq!(err.failure, FetchFailure::InvalidUrl);
}

#[test]
fn https_with_a_private_ca_and_basic_credentials_and_a_wrong_password() {
    if !http_or_skip() {
        return;
    }
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = test_certificates(certs_dir.path(), std::net::Ipv4Addr::LOCALHOST);
    if !interop_or_skip(certs.is_none().then_some("the openssl CLI cannot make test certificates")) {
        return;
    }
    let (ca, chain, key) = certs.unwrap();
    let served = served();
    let options =
        Options { basic: Some(("alice".into(), "s3cret-pass".into())), tls: Some((chain, key)), ..Options::default() };
    let server = GitHttpServer::start(served.root.path(), options);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let url = format!("{}/repo", server.base);
    assert!(url.starts_with("https://"));
    let basic = |password: &str| Credentials::Basic { username: "alice".into(), password: password.into() };
    let with = |credentials, ca: Option<&[u8]>| FetchRequest {
        credential_names: Default::default(),
        url: url.clone(),
        reference: GitRef::Branch("main".into()),
        credentials,
        ca_pem: ca.map(<[u8]>::to_vec),
        timeout: TIMEOUT,
    };

    let fetched = cache.fetch(&with(basic("s3cret-pass"), Some(&ca))).unwrap();
    assert_eq!(fetched.commit, served.commits[3].to_string());

    let err = cache.fetch(&with(basic("wrong-pass"), Some(&ca))).unwrap_err();
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed);
    assert!(err.message.contains("check the Secret's username/password"), "{err}");
    let err = cache.fetch(&with(Credentials::None, Some(&ca))).unwrap_err();
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed, "{err}");

    // Without the CA, the server's certificate is not trusted.
    let err = cache.fetch(&with(basic("s3cret-pass"), None)).unwrap_err();
    assert_eq!(err.failure, FetchFailure::Other, "{err}");
    assert!(err.message.contains("ca.crt"), "{err}");
}

#[test]
fn a_bearer_token_is_sent_and_a_wrong_one_refused() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let options = Options { bearer: Some("tok-good".into()), ..Options::default() };
    let server = GitHttpServer::start(served.root.path(), options);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let mut request = request(&format!("{}/repo", server.base), GitRef::Tag("v1.0.0".into()));
    request.credentials = Credentials::Bearer("tok-good".into());
    assert_eq!(cache.fetch(&request).unwrap().commit, served.commits[1].to_string());
    request.credentials = Credentials::Bearer("tok-bad".into());
    let err = cache.fetch(&request).unwrap_err();
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed);
    assert!(err.message.contains("bearer token"), "{err}");
}

#[test]
fn concurrent_fetches_of_one_ref_share_one_fetch() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let url = |server: &GitHttpServer| format!("{}/repo", server.base);

    // What one fetch sends, alone.
    let alone = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED))
        .unwrap()
        .fetch(&request(&url(&alone), GitRef::Branch("main".into())))
        .unwrap();
    let one = alone.requests.lock().unwrap().len();

    // Slow answers, so that the four calls overlap.
    let server =
        GitHttpServer::start(served.root.path(), Options { delay: Duration::from_millis(300), ..Options::default() });
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap());
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            let request = request(&url(&server), GitRef::Branch("main".into()));
            std::thread::spawn(move || {
                barrier.wait();
                cache.fetch(&request).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.commit == results[0].commit && r.transferred), "{results:?}");
    assert_eq!(server.requests.lock().unwrap().len(), one, "{:?}", server.requests.lock().unwrap());

    // Another ref of the same URL is another fetch.
    drop(results);
    cache.fetch(&request(&url(&server), GitRef::Tag("v1.0.0".into()))).unwrap();
    assert!(server.requests.lock().unwrap().len() > one);
}

#[test]
fn least_recently_used_mirrors_not_in_use_are_evicted_over_the_limits() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    for name in ["a", "b", "c"] {
        std::os::unix::fs::symlink(served.work(), served.root.path().join(name)).unwrap();
    }
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let fetch_from = |cache: &GitCache, name: &str| {
        cache.fetch(&request(&format!("{}/{name}", server.base), GitRef::Branch("main".into()))).unwrap()
    };
    // How large one mirror is.
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = GitCache::new(probe_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    drop(fetch_from(&probe, "a"));
    let one = probe.usage().bytes;
    assert!(one > 0);

    // Room for two mirrors and a half.
    let cache_dir = tempfile::tempdir().unwrap();
    let limits = CacheLimits { max_disk_bytes: one * 5 / 2, max_repositories: 10 };
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(limits)).unwrap();
    let a = fetch_from(&cache, "a"); // held: in use
    let b = fetch_from(&cache, "b");
    let b_path = b.repository.clone();
    drop(b);
    let c = fetch_from(&cache, "c");
    assert!(a.repository.exists(), "a leased mirror stays, though least recently used");
    assert!(!b_path.exists(), "the least recently used mirror not in use is removed");
    assert!(c.repository.exists());
    assert_eq!(cache.usage().mirrors, 2);
    drop((a, c));

    // By count: one mirror at most; the others go once released.
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(
        cache_dir.path().to_path_buf(),
        Budget::new(CacheLimits { max_disk_bytes: u64::MAX, max_repositories: 1 }),
    )
    .unwrap();
    let a = fetch_from(&cache, "a").repository;
    let b = fetch_from(&cache, "b").repository;
    assert!(!a.exists() && b.exists());
    // A cache reopened on the directory finds its mirror, and keeps it within the limits.
    drop(cache);
    let cache = GitCache::new(
        cache_dir.path().to_path_buf(),
        Budget::new(CacheLimits { max_disk_bytes: 0, max_repositories: 0 }),
    );
    assert_eq!(cache.unwrap().usage().mirrors, 0);
    assert!(!b.exists());
}

#[test]
fn concurrent_fetches_under_a_small_bound_never_remove_a_mirror_in_use() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let names = ["a", "b", "c"];
    for name in names {
        std::os::unix::fs::symlink(served.work(), served.root.path().join(name)).unwrap();
    }
    // Slow enough answers that fetches overlap with others' evictions.
    let server =
        GitHttpServer::start(served.root.path(), Options { delay: Duration::from_millis(20), ..Options::default() });
    let cache_dir = tempfile::tempdir().unwrap();
    let limits = CacheLimits { max_disk_bytes: u64::MAX, max_repositories: 1 };
    let cache = Arc::new(GitCache::new(cache_dir.path().to_path_buf(), Budget::new(limits)).unwrap());
    let refs = [
        (GitRef::Branch("main".into()), "version: 3\n"),
        (GitRef::Tag("v1.0.0".into()), "version: 1\n"),
        (GitRef::Semver("~1.1".into()), "version: 2\n"),
    ];
    let barrier = Arc::new(Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|thread| {
            let (cache, barrier, refs, base) = (cache.clone(), barrier.clone(), refs.clone(), server.base.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for round in 0..4 {
                    let name = names[(thread + round) % names.len()];
                    let (reference, content) = refs[(thread / 2 + round) % refs.len()].clone();
                    let fetched = cache.fetch(&request(&format!("{base}/{name}"), reference)).unwrap();
                    // Held: the mirror stays while other fetches land and evict.
                    assert_eq!(read_at(&fetched.repository, &fetched.commit, "app.yaml"), content);
                    std::thread::sleep(Duration::from_millis(30));
                    assert_eq!(read_at(&fetched.repository, &fetched.commit, "app.yaml"), content);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // Nothing in use: the next fetch leaves one mirror, and nothing moved aside stays on disk.
    let last = cache.fetch(&request(&format!("{}/a", server.base), GitRef::Branch("main".into()))).unwrap();
    assert_eq!(cache.usage().mirrors, 1);
    let entries: Vec<PathBuf> = std::fs::read_dir(cache_dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries, vec![last.repository.clone()]);
}

/// `len` bytes that do not compress, as hex text.
fn noise(len: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len / 16)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("{state:016x}")
        })
        .collect()
}

#[test]
fn a_fetch_larger_than_the_cache_fails_and_the_mirror_keeps_its_commit() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let cache_dir = tempfile::tempdir().unwrap();
    // Room for the small repository, not for 512 KiB of noise (about 256 KiB in a pack).
    let limits = CacheLimits { max_disk_bytes: 64 << 10, max_repositories: 10 };
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(limits)).unwrap();
    let url = format!("{}/repo", server.base);
    let first = cache.fetch(&request(&url, GitRef::Branch("main".into()))).unwrap();

    served.commit("noise.txt", &noise(512 << 10));
    let err = cache.fetch(&request(&url, GitRef::Branch("main".into()))).unwrap_err();
    assert_eq!(err.failure, FetchFailure::TooLarge, "{err}");
    assert!(err.message.contains("more than 65536 bytes"), "{err}");

    // The commit fetched before is still there, and found without a transfer.
    assert_eq!(read_at(&first.repository, &first.commit, "app.yaml"), "version: 3\n");
    let again = cache.fetch(&request(&url, GitRef::Commit(first.commit.clone()))).unwrap();
    assert_eq!((again.commit.as_str(), again.transferred), (first.commit.as_str(), false));
}

#[test]
fn a_fetch_that_outlasts_its_timeout_fails_and_the_mirror_keeps_its_commit() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let url = format!("{}/repo", server.base);
    let first = cache.fetch(&request(&url, GitRef::Branch("main".into()))).unwrap();

    // The same server, now answering after 5 s: a fetch given 1 s ends at 1 s.
    drop(server);
    let delay = Duration::from_secs(5);
    let _slow = GitHttpServer::start(served.root.path(), Options { port, delay, ..Options::default() });
    served.commit("app.yaml", "version: 4\n");
    let short = FetchRequest { timeout: Duration::from_secs(1), ..request(&url, GitRef::Branch("main".into())) };
    let started = std::time::Instant::now();
    let err = cache.fetch(&short).unwrap_err();
    assert_eq!(err.failure, FetchFailure::TimedOut, "{err}");
    assert!(started.elapsed() < delay, "ended at its timeout, not the server's answer: {:?}", started.elapsed());
    assert!(err.message.contains("not done within 1s") && err.message.contains("spec.timeout"), "{err}");
    assert_eq!(read_at(&first.repository, &first.commit, "app.yaml"), "version: 3\n");
}

#[test]
fn the_first_request_follows_redirects_and_credentials_never_go_to_another_host() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    // 127.0.0.2 is another host than 127.0.0.1 to the client, on the same loopback.
    let redirecting_to = |target: &GitHttpServer| {
        let redirect = Some(("/moved".to_string(), target.base.clone()));
        let address = Some(std::net::Ipv4Addr::new(127, 0, 0, 2));
        GitHttpServer::start(served.root.path(), Options { address, redirect, ..Options::default() })
    };

    // As git by default (http.followRedirects=initial): the ref advertisement's redirect is
    // followed, and the negotiation goes where it led (this server redirects POSTs too).
    let target = GitHttpServer::start(served.root.path(), Options::default());
    let moved = redirecting_to(&target);
    let fetched = cache.fetch(&request(&format!("{}/moved/repo", moved.base), GitRef::Branch("main".into()))).unwrap();
    assert_eq!(fetched.commit, served.commits[3].to_string());
    assert!(moved.count("GET") > 0 && target.count("POST") > 0, "{:?}", target.requests.lock().unwrap());
    assert_eq!(moved.count("POST"), 0, "{:?}", moved.requests.lock().unwrap());

    // A token for the first host is not sent to the host it redirects to.
    let guarded =
        GitHttpServer::start(served.root.path(), Options { bearer: Some("tok-first".into()), ..Options::default() });
    let moved = redirecting_to(&guarded);
    let with_token = FetchRequest {
        credentials: Credentials::Bearer("tok-first".into()),
        ..request(&format!("{}/moved/repo", moved.base), GitRef::Branch("main".into()))
    };
    let err = cache.fetch(&with_token).unwrap_err();
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed, "{err}");
    assert!(err.message.contains("another host"), "{err}");
    assert_eq!(guarded.count("GET"), 1, "{:?}", guarded.requests.lock().unwrap());
}

#[test]
fn no_credential_appears_in_any_error_or_debug_output() {
    if !http_or_skip() {
        return;
    }
    let served = served();
    let server = GitHttpServer::start(
        served.root.path(),
        Options { basic: Some(("alice".into(), "right-pass".into())), ..Options::default() },
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let secrets = ["pw-LEAK-1", "tok-LEAK-2", "key-LEAK-3", "url-LEAK-4"];
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let urls = [
        format!("{}/repo", server.base),
        format!("{}/missing", server.base),
        format!("http://127.0.0.1:{port}/repo"),
        format!("http://alice:url-LEAK-4@127.0.0.1:{}/repo", port),
        "ssh://git:url-LEAK-4@127.0.0.1/repo".to_string(),
    ];
    let all_credentials = [
        Credentials::Basic { username: "alice".into(), password: "pw-LEAK-1".into() },
        Credentials::Bearer("tok-LEAK-2".into()),
        Credentials::Ssh { identity: "key-LEAK-3".into(), known_hosts: String::new() },
    ];
    let mut seen = 0;
    for url in &urls {
        for credentials in &all_credentials {
            for reference in [GitRef::Branch("main".into()), GitRef::Semver("not a range".into())] {
                let request = FetchRequest {
                    credential_names: Default::default(),
                    url: url.clone(),
                    reference,
                    credentials: credentials.clone(),
                    ca_pem: Some(b"not a certificate".to_vec()),
                    timeout: TIMEOUT,
                };
                let err = cache.fetch(&request).expect_err("every one of these fetches fails");
                let text = format!("{err} {err:?} {:?} {request:?} {:#?}", err.failure, request);
                for secret in secrets {
                    assert!(!text.contains(secret), "{secret} in {text}");
                }
                seen += 1;
            }
        }
    }
    assert_eq!(seen, urls.len() * all_credentials.len() * 2);
}

#[test]
fn ssh_fetches_with_a_key_from_a_host_listed_in_known_hosts_hashed_or_not() {
    if !interop_or_skip(Sshd::missing().as_deref()) {
        return;
    }
    let mut served = served();
    let sshd = Sshd::start();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let known_hosts = format!("# the test server\n{}", sshd.known_host("host.pub"));
    let url = sshd.url(&served.work());
    let fetch = |reference: GitRef, known_hosts: &str| {
        cache.fetch(&FetchRequest {
            credential_names: Default::default(),
            url: url.clone(),
            reference,
            credentials: sshd.credentials("client", known_hosts),
            ca_pem: None,
            timeout: TIMEOUT,
        })
    };

    let main = fetch(GitRef::Branch("main".into()), &known_hosts).unwrap();
    assert_eq!(main.commit, served.commits[3].to_string());
    assert!(main.transferred && main.bytes_received > 0);
    assert_eq!(read_at(&main.repository, &main.commit, "app.yaml"), "version: 3\n");
    let again = fetch(GitRef::Branch("main".into()), &known_hosts).unwrap();
    assert_eq!((again.transferred, again.bytes_received), (false, 0));
    // An RSA key, though authorized, is refused before connecting, saying what to use instead
    // (russh 0.56's RSA support does not build with the rsa release candidate weaver locks).
    let rsa = cache.fetch(&FetchRequest {
        credential_names: Default::default(),
        url: url.clone(),
        reference: GitRef::Tag("v1.0.0".into()),
        credentials: sshd.credentials(sshd.authorize_rsa_client(), &known_hosts),
        ca_pem: None,
        timeout: TIMEOUT,
    });
    let err = rsa.unwrap_err();
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed, "{err}");
    assert!(
        err.message.contains("RSA keys are not supported") && err.message.contains("ssh-keygen -t ed25519"),
        "{err}"
    );
    // A cache smaller than what the server sends refuses the fetch, over ssh as over https.
    let small_dir = tempfile::tempdir().unwrap();
    let limits = CacheLimits { max_disk_bytes: main.bytes_received - 1, max_repositories: 10 };
    let small = GitCache::new(small_dir.path().to_path_buf(), Budget::new(limits)).unwrap();
    let request = FetchRequest {
        credential_names: Default::default(),
        url: url.clone(),
        reference: GitRef::Branch("main".into()),
        credentials: sshd.credentials("client", &known_hosts),
        ca_pem: None,
        timeout: TIMEOUT,
    };
    let err = small.fetch(&request).unwrap_err();
    assert_eq!(err.failure, FetchFailure::TooLarge, "{err}");
    let tag = fetch(GitRef::Semver("^1".into()), &known_hosts).unwrap();
    assert_eq!(
        (tag.reference.as_str(), tag.commit.as_str()),
        ("refs/tags/1.1.0", served.commits[2].to_string().as_str())
    );

    // Hashed as `ssh-keygen -H` writes them.
    let hashed_file = sshd.dir.path().join("known_hosts");
    std::fs::write(&hashed_file, &known_hosts).unwrap();
    assert!(Command::new("ssh-keygen").arg("-H").arg("-f").arg(&hashed_file).output().unwrap().status.success());
    let hashed = std::fs::read_to_string(&hashed_file).unwrap();
    assert!(hashed.contains("|1|") && !hashed.contains("127.0.0.1"), "{hashed}");
    let new = served.commit("app.yaml", "version: 4\n");
    let next = fetch(GitRef::Branch("main".into()), &hashed).unwrap();
    assert_eq!((next.commit.as_str(), next.transferred), (new.to_string().as_str(), true));
    assert_eq!(read_at(&next.repository, &next.commit, "app.yaml"), "version: 4\n");
}

/// The controller's image has no /tmp and a read-only root: an ssh fetch (and a push, over the
/// same transport) writes nothing but its cache. The environment is the process's, so the fetch
/// runs in a process of its own (this binary, running the ignored test below) whose TMPDIR
/// does not exist.
#[test]
fn ssh_fetches_with_no_temporary_directory() {
    if !interop_or_skip(Sshd::missing().as_deref()) {
        return;
    }
    let served = served();
    let sshd = Sshd::start();
    let cache_dir = tempfile::tempdir().unwrap();
    let run = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "git_source::ssh_fetch_in_this_process", "--ignored", "--nocapture"])
        .env("TMPDIR", cache_dir.path().join("missing"))
        .env("WEAVER_TEST_SSH_URL", sshd.url(&served.work()))
        .env("WEAVER_TEST_SSH_KNOWN_HOSTS", sshd.known_host("host.pub"))
        .env("WEAVER_TEST_SSH_IDENTITY", sshd.dir.path().join("client"))
        .env("WEAVER_TEST_SSH_CACHE", cache_dir.path().join("cache"))
        .env("WEAVER_TEST_SSH_COMMIT", served.commits[3].to_string())
        .output()
        .unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success() && output.contains("1 passed"), "{output}");
    assert!(!cache_dir.path().join("missing").exists());
}

/// Run by `ssh_fetches_with_no_temporary_directory`, which says what to fetch.
#[test]
#[ignore = "run by ssh_fetches_with_no_temporary_directory in a process whose TMPDIR does not exist"]
fn ssh_fetch_in_this_process() {
    let given = |name: &str| std::env::var(name).unwrap();
    let tmp = std::env::temp_dir();
    assert!(!tmp.exists(), "TMPDIR {} exists", tmp.display());
    let cache = GitCache::new(PathBuf::from(given("WEAVER_TEST_SSH_CACHE")), Budget::new(UNLIMITED)).unwrap();
    let identity = std::fs::read_to_string(given("WEAVER_TEST_SSH_IDENTITY")).unwrap();
    let fetched = cache
        .fetch(&FetchRequest {
            credential_names: Default::default(),
            url: given("WEAVER_TEST_SSH_URL"),
            reference: GitRef::Branch("main".into()),
            credentials: Credentials::Ssh {
                identity: identity.into(),
                known_hosts: given("WEAVER_TEST_SSH_KNOWN_HOSTS"),
            },
            ca_pem: None,
            timeout: TIMEOUT,
        })
        .unwrap();
    assert_eq!(fetched.commit, given("WEAVER_TEST_SSH_COMMIT"));
    assert_eq!(read_at(&fetched.repository, &fetched.commit, "app.yaml"), "version: 3\n");
}

#[test]
fn ssh_refuses_hosts_not_listed_or_listed_with_another_key_and_wrong_client_keys() {
    if !interop_or_skip(Sshd::missing().as_deref()) {
        return;
    }
    let served = served();
    let sshd = Sshd::start();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let fetch = |url: String, identity: &str, known_hosts: &str| {
        let request = FetchRequest {
            credential_names: Default::default(),
            url,
            reference: GitRef::Branch("main".into()),
            credentials: sshd.credentials(identity, known_hosts),
            ca_pem: None,
            timeout: TIMEOUT,
        };
        let err = cache.fetch(&request).unwrap_err();
        // The identities' key material never shows.
        for identity in ["client", "other"] {
            let key = sshd.read(identity);
            for line in key.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!format!("{err} {err:?} {request:?}").contains(line), "{err}");
            }
        }
        err
    };
    let url = sshd.url(&served.work());

    let unlisted = format!("[127.0.0.1]:{} {}\n", sshd.port + 1, sshd.read("host.pub"));
    for known_hosts in [String::new(), unlisted] {
        let err = fetch(url.clone(), "client", &known_hosts);
        assert_eq!(err.failure, FetchFailure::HostKeyMismatch, "{err}");
        assert!(err.message.contains("add the host's key to the Secret's known_hosts"), "{err}");
        assert!(err.message.contains("SHA256:"), "the message shows the server's key's fingerprint: {err}");
    }
    let err = fetch(url.clone(), "client", &sshd.known_host("other.pub"));
    assert_eq!(err.failure, FetchFailure::HostKeyMismatch, "{err}");
    assert!(err.message.contains("lists another"), "{err}");

    let known_hosts = sshd.known_host("host.pub");
    let err = fetch(url.clone(), "other", &known_hosts);
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed, "{err}");
    assert!(err.message.contains("deploy key"), "{err}");

    let err = fetch(sshd.url(&served.root.path().join("missing")), "client", &known_hosts);
    assert_eq!(err.failure, FetchFailure::Other, "{err}");
    assert!(err.message.contains("git-upload-pack"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = fetch(format!("ssh://git@127.0.0.1:{closed}/repo"), "client", &known_hosts);
    assert_eq!(err.failure, FetchFailure::Unreachable, "{err}");
}

/// A commit in `mirror` over `parent`'s tree with `file` set to `content`; its id.
fn commit_in_mirror(mirror: &Path, parent: &str, file: &str, content: &str) -> String {
    let repo = Repository::open_bare(mirror).unwrap();
    let parent = repo.find_commit(Oid::from_str(parent).unwrap()).unwrap();
    let mut tree = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    tree.insert(file, repo.blob(content.as_bytes()).unwrap(), 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let signature = Signature::new("pusher", "pusher@weaver.invalid", &Time::new(1_700_000_100, 0)).unwrap();
    repo.commit(None, &signature, &signature, "pushed", &tree, &[&parent]).unwrap().to_string()
}

/// Pushes over both transports: a new branch and a fast-forward of the tracked one, nothing
/// when the branch holds the commit or the same change, a non-fast-forward refused unless
/// forced, and the server's refusal of the credentials named without them.
fn pushes(url: &str, credentials: Credentials, wrong: Credentials, served: &mut Served) {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let to = |branch: &str, credentials: &Credentials| FetchRequest {
        credential_names: Default::default(),
        url: url.to_string(),
        reference: GitRef::Branch(branch.into()),
        credentials: credentials.clone(),
        ca_pem: None,
        timeout: TIMEOUT,
    };
    let fetched = cache.fetch(&to("main", &credentials)).unwrap();
    let ours = commit_in_mirror(&fetched.repository, &fetched.commit, "promoted.yaml", "tag: 2\n");
    let branch = |name: &str| served.repo.find_reference(&format!("refs/heads/{name}")).ok().and_then(|r| r.target());
    assert_eq!(cache.push(&fetched, &to("promote", &credentials), &ours, true), Ok(true));
    assert_eq!(branch("promote").map(|o| o.to_string()), Some(ours.clone()));
    assert_eq!(cache.push(&fetched, &to("promote", &credentials), &ours, true), Ok(false), "already there");
    // The same change made again (another time, another id) is not pushed either.
    let again = {
        let repo = Repository::open_bare(&fetched.repository).unwrap();
        let parent = repo.find_commit(Oid::from_str(&fetched.commit).unwrap()).unwrap();
        let tree = repo.find_commit(Oid::from_str(&ours).unwrap()).unwrap().tree().unwrap();
        let signature = Signature::new("pusher", "pusher@weaver.invalid", &Time::new(1_700_000_200, 0)).unwrap();
        repo.commit(None, &signature, &signature, "pushed again", &tree, &[&parent]).unwrap().to_string()
    };
    assert_ne!(again, ours);
    assert_eq!(cache.push(&fetched, &to("promote", &credentials), &again, true), Ok(false), "the same change");
    let err = cache.push(&fetched, &to("promote", &wrong), &ours, true).unwrap_err();
    assert_eq!(err.failure, FetchFailure::AuthenticationFailed, "{err}");
    assert!(err.message.starts_with("pushing to ") && !err.message.contains("LEAK"), "{err}");

    // The tracked branch, fast-forwarded.
    assert_eq!(cache.push(&fetched, &to("main", &credentials), &ours, false), Ok(true));
    assert_eq!(branch("main").map(|o| o.to_string()), Some(ours.clone()));
    // A commit on the old tip is not a fast-forward any more: refused, unless forced.
    let behind = commit_in_mirror(&fetched.repository, &fetched.commit, "other.yaml", "x\n");
    let err = cache.push(&fetched, &to("main", &credentials), &behind, false).unwrap_err();
    assert_eq!(err.failure, FetchFailure::PushRejected, "{err}");
    assert_eq!(err.failure, FetchFailure::PushRejected);
    assert_eq!(branch("main").map(|o| o.to_string()), Some(ours));
    served.commits.push(Oid::from_str(&behind).unwrap());
}

#[test]
fn pushes_go_over_http_with_the_fetchs_credentials_and_only_fast_forward_the_tracked_branch() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    // The server's working tree follows pushes to its checked-out branch.
    weaver_test_support::git::follow_pushes(&served.repo);
    let options = Options { basic: Some(("pusher".into(), "s3cret".into())), ..Options::default() };
    let server = GitHttpServer::start(served.root.path(), options);
    let url = format!("{}/repo", server.base);
    let good = Credentials::Basic { username: "pusher".into(), password: "s3cret".to_string().into() };
    let wrong = Credentials::Basic { username: "pusher".into(), password: "LEAK-wrong".to_string().into() };
    pushes(&url, good, wrong, &mut served);
    assert!(server.count("POST /repo/git-receive-pack") >= 2, "{:?}", server.requests.lock().unwrap());
}

#[test]
fn pushes_go_over_ssh_with_the_fetchs_key() {
    if !interop_or_skip(Sshd::missing().as_deref()) {
        return;
    }
    let mut served = served();
    weaver_test_support::git::follow_pushes(&served.repo);
    let sshd = Sshd::start();
    let known_hosts = sshd.known_host("host.pub");
    let url = sshd.url(&served.work());
    let good = sshd.credentials("client", &known_hosts);
    let wrong = sshd.credentials("other", &known_hosts);
    pushes(&url, good, wrong, &mut served);
}

/// The commits `head` reaches in the mirror, by a revision walk (which stops at a shallow
/// mirror's boundary).
fn history(mirror: &Path, head: &str) -> usize {
    let repo = Repository::open_bare(mirror).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push(Oid::from_str(head).unwrap()).unwrap();
    walk.count()
}

#[test]
fn a_first_fetch_takes_the_commit_alone_and_a_deepened_mirror_keeps_whole_history_after() {
    if !http_or_skip() {
        return;
    }
    let mut served = served();
    let server = GitHttpServer::start(served.root.path(), Options::default());
    let url = format!("{}/repo", server.base);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(cache_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let main = request(&url, GitRef::Branch("main".into()));
    let fetched = cache.fetch(&main).unwrap();
    assert_eq!(history(&fetched.repository, &fetched.commit), 1, "shallow: the commit alone");
    cache.deepen(&fetched, &main).unwrap();
    assert_eq!(history(&fetched.repository, &fetched.commit), 4, "c0..c3");
    assert!(!Repository::open_bare(&fetched.repository).unwrap().is_shallow());
    cache.deepen(&fetched, &main).unwrap();

    // Two commits later, the fetch takes them with their history, not the new tip alone.
    served.commit("app.yaml", "version: 4\n");
    let newest = served.commit("app.yaml", "version: 5\n").to_string();
    let again = cache.fetch(&main).unwrap();
    assert_eq!((again.commit.as_str(), again.transferred), (newest.as_str(), true));
    assert_eq!(history(&again.repository, &again.commit), 6);
    assert!(!Repository::open_bare(&again.repository).unwrap().is_shallow());

    // A mirror shared with another branch, of a history of its own: main, once deepened,
    // stays whole all the same.
    {
        // Branch `other`: two commits of a history of their own, which main's does not reach.
        let tip = served.repo.find_commit(Oid::from_str(&newest).unwrap()).unwrap();
        let signature = Signature::new("t", "t@weaver.invalid", &Time::new(1_700_000_000, 0)).unwrap();
        let tree = tip.tree().unwrap();
        let root = served.repo.commit(None, &signature, &signature, "other root", &tree, &[]).unwrap();
        let root = served.repo.find_commit(root).unwrap();
        served.repo.commit(Some("refs/heads/other"), &signature, &signature, "other", &tree, &[&root]).unwrap();
    }
    let shared_dir = tempfile::tempdir().unwrap();
    let shared = GitCache::new(shared_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let other = shared.fetch(&request(&url, GitRef::Branch("other".into()))).unwrap();
    assert_eq!(history(&other.repository, &other.commit), 1);
    let main_fetched = shared.fetch(&main).unwrap();
    shared.deepen(&main_fetched, &main).unwrap();
    assert_eq!(history(&main_fetched.repository, &main_fetched.commit), 6);
    // The deepen unshallowed the mirror, `other`'s history too (the server sends the parents
    // of every shallow commit), so later fetches into it are whole.
    assert!(!Repository::open_bare(&main_fetched.repository).unwrap().is_shallow());
    assert_eq!(history(&main_fetched.repository, &other.commit), 2, "other's root came with it");
    served.commit("app.yaml", "version: 6\n");
    let newest = served.commit("app.yaml", "version: 7\n").to_string();
    let third = shared.fetch(&main).unwrap();
    assert_eq!(third.commit, newest);
    assert_eq!(history(&third.repository, &third.commit), 8, "main's history stays whole");

    // A commit no ref names (`ref.commit`), in a mirror of its own: deepened all the same.
    let other_dir = tempfile::tempdir().unwrap();
    let other = GitCache::new(other_dir.path().to_path_buf(), Budget::new(UNLIMITED)).unwrap();
    let by_id = request(&url, GitRef::Commit(served.commits[2].to_string()));
    let fetched = other.fetch(&by_id).unwrap();
    other.deepen(&fetched, &by_id).unwrap();
    assert_eq!(history(&fetched.repository, &fetched.commit), 3, "c0..c2");
}
