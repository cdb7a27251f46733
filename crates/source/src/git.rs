//! The cache of bare mirrors: one per repository URL, in a directory named by a hash of the
//! normalized URL. A fetch lists the remote's refs, resolves the ref to a commit, and fetches
//! (shallow, unless the mirror was deepened to whole history) only when the mirror lacks that
//! commit. Concurrent fetches of one (URL, ref,
//! credentials) share one fetch; fetches into one mirror take turns; different mirrors fetch in
//! parallel. After each fetch, least recently used mirrors (and chart archives: they share the
//! [`Budget`]) that nobody holds a lease on are removed until the cache is within its limits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime};

use git2::{AutotagOption, Direction, ErrorClass, ErrorCode, FetchOptions, Oid, Repository};

use super::budget::{Budget, DISCARDED, Flights, Kind, Usage, lock, move_aside, remove_discarded};
use super::transport::{self, Session};
use super::{Credentials, FetchError, FetchFailure, FetchRequest, Fetched, GitRef, Scheme, SourceUrl};
use weaver_core::error::{Error, Result};

/// The bare mirrors of one controller process. `Send + Sync`: share it with an `Arc`.
///
/// A mirror stays on disk while a [`Fetched`] that names it (or a clone of one) is alive: a
/// reconcile keeps its `Fetched` while it reads the commit, and eviction passes over it.
pub struct GitCache {
    dir: PathBuf,
    /// Shared with the controller's chart archives.
    budget: Arc<Budget>,
    flights: Flights<FlightKey, Result<Fetched, FetchError>>,
    /// The last successful fetch of each key and when it started, for callers content with an
    /// answer read since a given time ([`GitCache::fetch_since`]).
    recent: Mutex<HashMap<FlightKey, Recent>>,
    /// The branches each remote (URL, credentials, CA) advertised last, to a fetch or a
    /// listing, and when that started: [`GitCache::branches_since`].
    advertised: Mutex<HashMap<RemoteKey, (Instant, Branches)>>,
    /// Every fetch of this cache starts after it.
    created: Instant,
}

/// A remote's branches (`main` for `refs/heads/main`) and their head commits.
type Branches = Vec<(String, String)>;

/// A remote as its advertisement answers it: one URL, read with one set of credentials and CA.
#[derive(Clone, PartialEq, Eq, Hash)]
struct RemoteKey {
    url: String,
    credentials: [u8; 32],
    ca_pem: Option<Vec<u8>>,
}

impl RemoteKey {
    fn of(url: &SourceUrl, request: &FetchRequest) -> RemoteKey {
        RemoteKey {
            url: url.normalized(),
            credentials: request.credentials.fingerprint(),
            ca_pem: request.ca_pem.clone(),
        }
    }
}

/// A fetch's answer, kept without holding its mirror: eviction may still remove it.
struct Recent {
    commit: String,
    repository: PathBuf,
    reference: String,
    /// When the fetch started: it read the remote's refs after that.
    started: Instant,
}

/// How long a fetch's answer is kept for [`GitCache::fetch_since`]: two default intervals.
const RECENT_KEPT: Duration = Duration::from_secs(600);

#[derive(Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    url: String,
    reference: GitRef,
    credentials: [u8; 32],
    ca_pem: Option<Vec<u8>>,
}

/// libgit2's pack windows: at most this much of the packs is mapped at once (process-wide;
/// libgit2's defaults on 64-bit are 1 GiB windows and 8 GiB mapped).
const MWINDOW_SIZE: usize = 32 << 20;
const MWINDOW_MAPPED_LIMIT: usize = 256 << 20;

impl GitCache {
    /// A cache in `dir` (created if missing), within `budget`; mirrors already there are kept,
    /// their last use taken from the directory's modification time.
    pub fn new(dir: PathBuf, budget: Arc<Budget>) -> Result<GitCache> {
        static MWINDOW: Once = Once::new();
        MWINDOW.call_once(|| {
            // SAFETY: set once, before this process's fetches.
            unsafe {
                let _ = git2::opts::set_mwindow_size(MWINDOW_SIZE);
                let _ = git2::opts::set_mwindow_mapped_limit(MWINDOW_MAPPED_LIMIT);
            }
        });
        transport::register();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the git cache directory", &dir, e))?;
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("read the git cache directory", &dir, e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(DISCARDED) {
                // Moved aside for removal by a process that stopped before removing it.
                remove_discarded(&entry.path());
                continue;
            }
            if !is_mirror_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let last_used = entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
            budget.found(entry.path(), Kind::Mirror, disk_usage(&entry.path()), last_used);
        }
        budget.evict();
        Ok(GitCache {
            dir,
            budget,
            flights: Flights::new(),
            recent: Mutex::default(),
            advertised: Mutex::default(),
            created: Instant::now(),
        })
    }

    /// Fetches `request.reference` into the URL's mirror. Blocking. A call made while another
    /// with the same URL, ref, credentials and CA is fetching waits for it and returns its result.
    pub fn fetch(&self, request: &FetchRequest) -> Result<Fetched, FetchError> {
        self.fetch_answered(request, None)
    }

    /// [`GitCache::fetch_since`] a fetch that started less than `within` ago.
    pub fn fetch_within(&self, request: &FetchRequest, within: Duration) -> Result<Fetched, FetchError> {
        self.fetch_since(request, Instant::now().checked_sub(within).unwrap_or(self.created))
    }

    /// Fetches `request.reference` into the URL's mirror, or gives the answer of a fetch with
    /// the same URL, ref, credentials and CA that started at or after `since` (under way, or
    /// done): a reconcile passes when it was asked for, so that no fetch started before a push
    /// it was asked for answers it. A fetch under way that started before `since` is waited for,
    /// then the remote is read again: one key's fetches take turns, so each answer was read
    /// after the one before it, never older. Blocking.
    pub fn fetch_since(&self, request: &FetchRequest, since: Instant) -> Result<Fetched, FetchError> {
        self.fetch_answered(request, Some(since))
    }

    /// [`GitCache::fetch_since`] `since`; without it, [`GitCache::fetch`].
    fn fetch_answered(&self, request: &FetchRequest, since: Option<Instant>) -> Result<Fetched, FetchError> {
        let url = SourceUrl::parse(&request.url).map_err(|e| FetchError::new(FetchFailure::InvalidUrl, e))?;
        let key = FlightKey {
            url: url.normalized(),
            reference: request.reference.clone(),
            credentials: request.credentials.fingerprint(),
            ca_pem: request.ca_pem.clone(),
        };
        if let Some(fetched) = since.and_then(|since| self.recent(&key, since)) {
            return Ok(fetched);
        }
        self.flights.run_since(
            key.clone(),
            since,
            || {
                let started = Instant::now();
                let result = self.fetch_now(url, request);
                if let Ok(fetched) = &result {
                    let recent = Recent {
                        commit: fetched.commit.clone(),
                        repository: fetched.repository.clone(),
                        reference: fetched.reference.clone(),
                        started,
                    };
                    lock(&self.recent).insert(key, recent);
                    self.budget.evict();
                }
                result
            },
            || Err(FetchError::new(FetchFailure::Other, "the fetch panicked")),
        )
    }

    /// The answer of `key`'s last fetch if it started at or after `since` and its mirror is
    /// still there (leased again).
    fn recent(&self, key: &FlightKey, since: Instant) -> Option<Fetched> {
        let mut recent = lock(&self.recent);
        recent.retain(|_, r| r.started.elapsed() < RECENT_KEPT);
        let found = recent.get(key).filter(|r| r.started >= since)?;
        let lease = self.budget.lease_held(&found.repository)?;
        Some(Fetched {
            commit: found.commit.clone(),
            repository: found.repository.clone(),
            reference: found.reference.clone(),
            transferred: false,
            bytes_received: 0,
            duration: Duration::ZERO,
            unpacked: false,
            manifests: false,
            lease,
        })
    }

    fn fetch_now(&self, url: SourceUrl, request: &FetchRequest) -> Result<Fetched, FetchError> {
        let start = Instant::now();
        if let GitRef::Commit(id) = &request.reference
            && (id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(FetchError::new(
                FetchFailure::RefNotFound,
                format!("fetching {}: commit `{id}` is not a full commit id: give all 40 hex digits", url.shown()),
            ));
        }
        let ssh_key = matches!(request.credentials, Credentials::Ssh { .. });
        let http_credentials = matches!(request.credentials, Credentials::Basic { .. } | Credentials::Bearer(_));
        let mismatch = match url.scheme {
            Scheme::Ssh if http_credentials => Some("username/password or a token, for an ssh URL"),
            Scheme::Https | Scheme::Http if ssh_key => Some("an ssh key (identity), for an https URL"),
            _ => None,
        };
        if let Some(mismatch) = mismatch {
            return Err(FetchError::new(
                FetchFailure::AuthenticationFailed,
                format!(
                    "fetching {} ({}): the Secret holds {mismatch}: give the URL the Secret is for, or the Secret \
                     the URL needs",
                    url.shown(),
                    request.reference
                ),
            ));
        }
        let path = self.dir.join(mirror_name(&url.normalized()));
        let remote = RemoteKey::of(&url, request);
        // Leased before waiting for the mirror, so that no eviction removes it meanwhile.
        let lease = self.budget.lease(&path, Kind::Mirror, None);
        let mirror_lock = self.budget.writing(&path, Kind::Mirror);
        let _fetching = lock(&mirror_lock);
        // The deadline runs from here: waiting for another fetch into the mirror is bounded by
        // that fetch's own.
        let session = Arc::new(self.session(url, request));
        let other = |what: &str, err: &dyn std::fmt::Display| {
            FetchError::new(FetchFailure::Other, format!("{}: cannot {what}: {err}", session.what()))
        };
        let repo = match Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(_) => {
                // A mirror left half made by a crash is made again (moved aside first, so that
                // the new one is never mixed with files of the old).
                if let Ok(Some(aside)) = move_aside(&path) {
                    remove_discarded(&aside);
                }
                Repository::init_bare(&path).map_err(|e| other("create the mirror", &e.message()))?
            }
        };
        let _entered = transport::enter(session.clone());
        let found = fetch_into(&repo, &session)?;
        drop(_entered);
        self.remember_branches(remote, start, &found.heads);

        // A fetch that transferred nothing left the mirror's size as it was: no walk of its files.
        let size = found.transferred.then(|| disk_usage(&path));
        self.budget.used(&path, size);
        Ok(Fetched {
            commit: found.commit.to_string(),
            repository: path,
            reference: found.reference,
            transferred: found.transferred,
            bytes_received: found.bytes_received,
            duration: start.elapsed(),
            unpacked: false,
            manifests: false,
            lease,
        })
    }

    /// The remote's branches (`main` for `refs/heads/main`) and their head commits, from its
    /// refs advertisement alone, with `request`'s credentials, CA and timeout (its reference is
    /// not read): nothing is fetched or written. Blocking.
    pub fn branches(&self, request: &FetchRequest) -> Result<Vec<(String, String)>, FetchError> {
        let url = SourceUrl::parse(&request.url).map_err(|e| FetchError::new(FetchFailure::InvalidUrl, e))?;
        let key = RemoteKey::of(&url, request);
        let started = Instant::now();
        let session = Arc::new(self.session(url, request));
        let _entered = transport::enter(session.clone());
        let mut remote =
            git2::Remote::create_detached(session.url.display().as_str()).map_err(|e| classify(&session, &e))?;
        let heads = advertised(&mut remote, &session)?;
        Ok(self.remember_branches(key, started, &heads))
    }

    /// [`GitCache::branches`], or the branches the remote advertised to a fetch or listing of
    /// it (the same URL, credentials and CA) that started at or after `since`: a reconcile's own
    /// fetch has just read them, and a listing would ask again for the same answer.
    pub fn branches_since(&self, request: &FetchRequest, since: Instant) -> Result<Vec<(String, String)>, FetchError> {
        let url = SourceUrl::parse(&request.url).map_err(|e| FetchError::new(FetchFailure::InvalidUrl, e))?;
        let known = lock(&self.advertised).get(&RemoteKey::of(&url, request)).cloned();
        match known {
            Some((started, branches)) if started >= since => Ok(branches),
            _ => self.branches(request),
        }
    }

    /// The branches of `heads` (an advertisement read from `started` on), kept for
    /// [`GitCache::branches_since`].
    fn remember_branches(&self, key: RemoteKey, started: Instant, heads: &[(String, Oid)]) -> Vec<(String, String)> {
        let branches: Vec<(String, String)> = heads
            .iter()
            .filter_map(|(name, oid)| Some((name.strip_prefix("refs/heads/")?.to_string(), oid.to_string())))
            .collect();
        let mut advertised = lock(&self.advertised);
        advertised.retain(|_, (at, _)| at.elapsed() < RECENT_KEPT);
        // A slower answer that started earlier never replaces a newer one.
        if advertised.get(&key).is_none_or(|(at, _)| *at <= started) {
            advertised.insert(key, (started, branches.clone()));
        }
        branches
    }

    /// `commit` as found through `request`'s ref, when its URL's mirror holds it already: what a
    /// fetch of the ref, whose advertised head is `commit`, would give, without asking the
    /// server (a branch listing just read the head). None when it must be fetched, or the ref
    /// names no one ref (a version range, a commit). Blocking; reads the mirror only.
    pub fn held(&self, request: &FetchRequest, commit: &str) -> Option<Fetched> {
        let reference = request.reference.full_name()?;
        let path = self.dir.join(mirror_name(&SourceUrl::parse(&request.url).ok()?.normalized()));
        let oid = git2::Oid::from_str(commit).ok()?;
        // Leased first: an eviction after this check leaves the mirror alone.
        let lease = self.budget.lease_held(&path)?;
        Repository::open_bare(&path).ok()?.find_commit(oid).ok()?;
        Some(Fetched {
            commit: commit.to_string(),
            repository: path,
            reference,
            transferred: false,
            bytes_received: 0,
            duration: Duration::ZERO,
            unpacked: false,
            manifests: false,
            lease,
        })
    }

    /// The transports' session for `request` to `url`, within this cache's disk budget.
    fn session(&self, url: SourceUrl, request: &FetchRequest) -> Session {
        Session::new(
            url,
            request.reference.clone(),
            (request.credentials.clone(), request.credential_names.clone()),
            request.ca_pem.clone(),
            self.budget.clone(),
            request.timeout,
        )
    }

    /// Fetches the whole history of `fetched`'s ref into its mirror (`request`'s credentials and
    /// CA) when the mirror is shallow, as a first fetch leaves it: for what walks the history
    /// below the fetched commit (`spec.source.verify.mode: all`). Later fetches into the mirror
    /// keep it whole. Blocking.
    pub fn deepen(&self, fetched: &Fetched, request: &FetchRequest) -> Result<(), FetchError> {
        let url = SourceUrl::parse(&request.url).map_err(|e| FetchError::new(FetchFailure::InvalidUrl, e))?;
        let mirror_lock = self.budget.writing(&fetched.repository, Kind::Mirror);
        let _writing = lock(&mirror_lock);
        let repo = Repository::open_bare(&fetched.repository).map_err(|e| {
            FetchError::new(FetchFailure::Other, format!("cannot open the mirror of {}: {}", request.url, e.message()))
        })?;
        self.deepened(&repo, fetched, url, request)
    }

    /// [`GitCache::deepen`], the mirror `repo` written to by this caller alone.
    fn deepened(
        &self,
        repo: &Repository,
        fetched: &Fetched,
        url: SourceUrl,
        request: &FetchRequest,
    ) -> Result<(), FetchError> {
        if !repo.is_shallow() {
            return Ok(());
        }
        let by_ref = fetched.reference.starts_with("refs/");
        let reference = match by_ref {
            true => GitRef::Branch(fetched.reference.clone()),
            false => GitRef::Commit(fetched.reference.clone()),
        };
        let deepening = Arc::new(self.session(url, &FetchRequest { reference, ..request.clone() }));
        let _entered = transport::enter(deepening.clone());
        let mut remote = repo.remote_anonymous(&deepening.url.display()).map_err(|e| classify(&deepening, &e))?;
        let mut fetch = |refspecs: &[String]| {
            let mut options = FetchOptions::new();
            options.download_tags(AutotagOption::None).update_fetchhead(false).depth(i32::MAX);
            remote.fetch(refspecs, Some(&mut options), None)
        };
        let deepened = match by_ref {
            true => fetch(&[format!("+{0}:{0}", fetched.reference)]),
            // A commit no ref names (`ref.commit`): by its id where the server allows it, else
            // every branch and tag, whole, as its fetch did.
            false => fetch(&[format!("+{0}:refs/weaver/commits/{0}", fetched.reference)]).or_else(|_| {
                fetch(&["+refs/heads/*:refs/heads/*".to_string(), "+refs/tags/*:refs/tags/*".to_string()])
            }),
        };
        deepened.map_err(|e| classify(&deepening, &e))?;
        self.budget.used(&fetched.repository, Some(disk_usage(&fetched.repository)));
        Ok(())
    }

    /// Pushes `commit`, a commit of `fetched`'s mirror, to the branch `request.reference`
    /// names, with the request's credentials and CA (a fetch's); `force` replaces what the
    /// branch has, else the server's branch must be an ancestor (git's fast-forward rule).
    /// Nothing is pushed when the branch has `commit`, or a commit of the same tree on the same
    /// parents (an earlier push of this change). Returns whether it pushed. Blocking.
    pub fn push(
        &self,
        fetched: &Fetched,
        request: &FetchRequest,
        commit: &str,
        force: bool,
    ) -> Result<bool, FetchError> {
        let url = SourceUrl::parse(&request.url).map_err(|e| FetchError::new(FetchFailure::InvalidUrl, e))?;
        let session = Arc::new(self.session(url, request).pushing());
        let other = |what: &str, err: &dyn std::fmt::Display| {
            FetchError::new(FetchFailure::Other, format!("{}: cannot {what}: {err}", session.what()))
        };
        let GitRef::Branch(branch) = &request.reference else {
            return Err(other("push", &"only a branch is pushed to"));
        };
        let refname = request.reference.full_name().unwrap_or_else(|| branch.clone());
        let ours = Oid::from_str(commit).map_err(|e| other("read the commit", &e.message()))?;
        // Fetches into the mirror wait: the push reads its objects.
        let mirror_lock = self.budget.writing(&fetched.repository, Kind::Mirror);
        let _pushing = lock(&mirror_lock);
        let repo = Repository::open_bare(&fetched.repository).map_err(|e| other("open the mirror", &e.message()))?;
        // libgit2 walks the history of what it pushes past a shallow mirror's boundary (its
        // revision walk reads no shallow grafts): the fetched ref's whole history first.
        self.deepened(&repo, fetched, session.url.clone(), request)?;
        let _entered = transport::enter(session.clone());
        let mut remote = repo.remote_anonymous(&session.url.display()).map_err(|e| classify(&session, &e))?;
        let theirs = pushed_head(&mut remote, &session, &refname)?;
        let same_change = |theirs: Oid| {
            let (Ok(theirs), Ok(ours)) = (repo.find_commit(theirs), repo.find_commit(ours)) else { return false };
            theirs.tree_id() == ours.tree_id() && theirs.parent_ids().eq(ours.parent_ids())
        };
        if theirs.is_some_and(|theirs| theirs == ours || same_change(theirs)) {
            return Ok(false);
        }
        let mut refused = None;
        let mut callbacks = git2::RemoteCallbacks::new();
        callbacks.push_update_reference(|_, status| {
            refused = status.map(str::to_string);
            Ok(())
        });
        let mut options = git2::PushOptions::new();
        options.remote_callbacks(callbacks);
        let refspec = format!("{}{ours}:{refname}", if force { "+" } else { "" });
        let pushed = remote.push(&[refspec], Some(&mut options));
        drop(options);
        match pushed {
            Err(e) if e.code() == ErrorCode::NotFastForward => Err(FetchError::new(
                FetchFailure::PushRejected,
                format!(
                    "{}: the branch has commits this push is not based on: the next fetch reads them and promotes again",
                    session.what()
                ),
            )),
            Err(e) => Err(classify(&session, &e)),
            Ok(()) => match refused {
                Some(why) => Err(FetchError::new(
                    FetchFailure::PushRejected,
                    format!("{}: the server refused the update: {why}", session.what()),
                )),
                None => Ok(true),
            },
        }
    }

    /// Whether the request's credentials may push to the repository of `fetched`: the server's
    /// answer to starting a push (git's receive-pack), which refuses a read-only key or token
    /// before anything is sent. Pushes nothing. Blocking.
    pub fn check_push(&self, fetched: &Fetched, request: &FetchRequest) -> Result<(), FetchError> {
        let url = SourceUrl::parse(&request.url).map_err(|e| FetchError::new(FetchFailure::InvalidUrl, e))?;
        let session = Arc::new(self.session(url, request).pushing());
        let repo = Repository::open_bare(&fetched.repository).map_err(|e| {
            FetchError::new(FetchFailure::Other, format!("{}: cannot open the mirror: {}", session.what(), e.message()))
        })?;
        let _entered = transport::enter(session.clone());
        let mut remote = repo.remote_anonymous(&session.url.display()).map_err(|e| classify(&session, &e))?;
        pushed_head(&mut remote, &session, "HEAD").map(|_| ())
    }

    /// What the cache holds (the chart archives that share its budget among it), for metrics
    /// and tests.
    pub fn usage(&self) -> Usage {
        self.budget.usage()
    }
}

fn mirror_name(normalized: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(normalized.as_bytes())[..16])
}

fn is_mirror_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The size of the files under `path`.
fn disk_usage(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_usage(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

struct Found {
    commit: Oid,
    reference: String,
    transferred: bool,
    bytes_received: u64,
    /// Every ref the remote advertised.
    heads: Vec<(String, Oid)>,
}

/// The remote's refs and what each points at, from its refs advertisement.
fn advertised(remote: &mut git2::Remote<'_>, session: &Session) -> Result<Vec<(String, Oid)>, FetchError> {
    let connection = remote.connect_auth(Direction::Fetch, None, None).map_err(|e| classify(session, &e))?;
    let heads = connection.list().map_err(|e| classify(session, &e))?;
    Ok(heads.iter().map(|head| (head.name().to_string(), head.oid())).collect())
}

/// Lists the remote's refs, resolves the session's ref, and fetches it unless `repo` holds it.
fn fetch_into(repo: &Repository, session: &Session) -> Result<Found, FetchError> {
    let mut remote = repo.remote_anonymous(&session.url.display()).map_err(|e| classify(session, &e))?;
    let heads = advertised(&mut remote, session)?;
    let (reference, commit) = resolve(&heads, session)?;
    let present = |oid: Oid| repo.find_commit(oid).is_ok();
    let mut transferred = false;
    let mut bytes_received = 0;
    if !present(commit) {
        transferred = true;
        let mut fetch = |refspecs: &[String], depth: i32| -> Result<u64, git2::Error> {
            let mut options = FetchOptions::new();
            options.download_tags(AutotagOption::None).update_fetchhead(false).depth(depth);
            let before = session.bytes_read.load(Ordering::Relaxed);
            remote.fetch(refspecs, Some(&mut options), None)?;
            Ok(session.bytes_read.load(Ordering::Relaxed) - before)
        };
        let refspec = match reference.starts_with("refs/") {
            true => format!("+{reference}:{reference}"),
            // A commit no ref names: by its id, where the server allows it.
            false => format!("+{commit}:refs/weaver/commits/{commit}"),
        };
        // The commit alone, unless the mirror holds whole history already (a deepen unshallows
        // every ref of it): a shallow fetch would cut that history off at the new commit.
        let depth = match repo.is_shallow() || repo.is_empty().unwrap_or(true) {
            true => 1,
            false => 0,
        };
        match fetch(&[refspec], depth) {
            Ok(bytes) => bytes_received = bytes,
            Err(err) if !reference.starts_with("refs/") => {
                // Servers refuse ids no ref advertises unless configured to (allowAnySHA1InWant):
                // fetch every branch and tag, whole, and look again.
                tracing::debug!("fetching commit {commit} by id failed ({}), fetching the full history", err.message());
                let all = ["+refs/heads/*:refs/heads/*".to_string(), "+refs/tags/*:refs/tags/*".to_string()];
                let unshallow = if repo.is_shallow() { i32::MAX } else { 0 };
                bytes_received = fetch(&all, unshallow).map_err(|e| classify(session, &e))?;
            }
            Err(err) => return Err(classify(session, &err)),
        }
        if !present(commit) {
            return Err(FetchError::new(
                FetchFailure::RefNotFound,
                format!(
                    "{}: the server sent no commit {commit}: check that it exists in the repository",
                    session.what()
                ),
            ));
        }
    } else if reference.starts_with("refs/") {
        // The mirror's ref follows the remote's, so that the commit stays referenced.
        let target = heads.iter().find(|(name, _)| *name == reference).map(|(_, oid)| *oid);
        if let Some(target) = target.filter(|oid| repo.find_object(*oid, None).is_ok()) {
            let _ = repo.reference(&reference, target, true, "weaver: the remote's ref");
        }
    }
    Ok(Found { commit, reference, transferred, bytes_received, heads })
}

/// The ref a [`GitRef`] names among the remote's `heads`, and its commit.
fn resolve(heads: &[(String, Oid)], session: &Session) -> Result<(String, Oid), FetchError> {
    let find = |name: &str| heads.iter().find(|(n, _)| n == name).map(|(_, oid)| *oid);
    // An annotated tag is listed twice: the tag object, and `^{}` its commit.
    let peeled = |name: &str| find(&format!("{name}^{{}}")).or_else(|| find(name));
    let not_found =
        |what: String| Err(FetchError::new(FetchFailure::RefNotFound, format!("{}: {what}", session.what())));
    match &session.reference {
        GitRef::Branch(branch) => {
            let name = session.reference.full_name().unwrap_or_else(|| branch.clone());
            match find(&name) {
                Some(oid) => Ok((name, oid)),
                None => not_found(format!("the repository has no branch {branch}: check spec.ref.branch")),
            }
        }
        GitRef::Ref(name) => match find(name) {
            Some(oid) => Ok((name.clone(), oid)),
            None => not_found(format!("the repository has no ref {name}")),
        },
        GitRef::Tag(tag) => {
            let name = session.reference.full_name().unwrap_or_else(|| tag.clone());
            match peeled(&name) {
                Some(oid) => Ok((name, oid)),
                None => not_found(format!("the repository has no tag {tag}: check spec.ref.tag")),
            }
        }
        GitRef::Semver(range) => {
            use weaver_semver::{Version, satisfies};
            if let Err(e) = satisfies(range, &Version::parse("0.0.0").expect("a version")) {
                return not_found(format!("`{range}` is not a version range ({e}): check spec.ref.semver"));
            }
            let best = heads
                .iter()
                .filter_map(|(name, _)| {
                    let tag = name.strip_prefix("refs/tags/")?;
                    if tag.ends_with("^{}") {
                        return None;
                    }
                    let version = Version::parse(tag).ok()?;
                    satisfies(range, &version).unwrap_or(false).then_some((version, name))
                })
                // The highest version; of equal ones (`v1.0.0`, `1.0.0`), the last name.
                .max_by(|(a, a_name), (b, b_name)| a.compare(b).then_with(|| a_name.cmp(b_name)));
            match best {
                Some((_, name)) => Ok((name.clone(), peeled(name).expect("listed"))),
                None => {
                    not_found(format!("no tag is a version in range `{range}`: check spec.ref.semver and the tags"))
                }
            }
        }
        GitRef::Commit(id) => {
            let oid = Oid::from_str(id).map_err(|_| {
                FetchError::new(FetchFailure::RefNotFound, format!("{}: `{id}` is not a commit id", session.what()))
            })?;
            // A commit a branch or tag points at is fetched through that ref.
            let through = heads
                .iter()
                .filter(|(name, _)| name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
                .find(|(name, head)| *head == oid && !name.ends_with("^{}"))
                .or_else(|| heads.iter().find(|(name, head)| *head == oid && name.ends_with("^{}")))
                .map(|(name, _)| name.trim_end_matches("^{}").to_string());
            Ok((through.unwrap_or_else(|| oid.to_string()), oid))
        }
    }
}

/// A libgit2 failure as a [`FetchError`]: what the transport understood first, else libgit2's
/// code and class.
/// Starts a push to `remote` (the server's receive-pack, which checks the credentials' right
/// to write) and reads where its ref `refname` points, if it has it.
fn pushed_head(remote: &mut git2::Remote<'_>, session: &Session, refname: &str) -> Result<Option<Oid>, FetchError> {
    let connection = remote.connect_auth(Direction::Push, None, None).map_err(|e| classify(session, &e))?;
    let heads = connection.list().map_err(|e| classify(session, &e))?;
    Ok(heads.iter().find(|head| head.name() == refname).map(|head| head.oid()))
}

fn classify(session: &Session, err: &git2::Error) -> FetchError {
    if let Some(failure) = session.failure() {
        return failure;
    }
    let message = redact(session, err.message());
    let names = &session.names;
    let (failure, what_to_do) = match (err.code(), err.class()) {
        (ErrorCode::Auth, _) => {
            (FetchFailure::AuthenticationFailed, format!("check {}", names.name(crate::CredentialNames::CREDENTIALS)))
        }
        (ErrorCode::Certificate, _) | (_, ErrorClass::Ssl) => (
            FetchFailure::Other,
            format!("the server's certificate was refused: check {}", names.name(crate::CredentialNames::CA)),
        ),
        (ErrorCode::NotFound, _) => (FetchFailure::RefNotFound, "check the ref".to_string()),
        (_, ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssh) => {
            (FetchFailure::Unreachable, "check the URL and that the server is reachable".to_string())
        }
        _ => (FetchFailure::Other, "check the URL and the ref".to_string()),
    };
    FetchError::new(failure, format!("{}: {message}: {what_to_do}", session.what()))
}

/// libgit2's message, where a URL could appear, shown with the URL without userinfo (the one
/// libgit2 was given has none; this is a second guard).
fn redact(session: &Session, message: &str) -> String {
    message
        .split(' ')
        .map(|word| if word.contains("://") { super::redact_url(word) } else { word.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
        .replace(&session.url.display(), "the repository")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(reference: GitRef) -> Session {
        let url = SourceUrl::parse("https://h/r").unwrap();
        let budget = Budget::new(super::super::CacheLimits { max_disk_bytes: u64::MAX, max_repositories: usize::MAX });
        let credentials = (Credentials::None, Default::default());
        Session::new(url, reference, credentials, None, budget, std::time::Duration::from_secs(60))
    }

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    #[test]
    fn refs_resolve_branches_tags_peeled_the_highest_version_in_a_range_and_a_full_ref_as_named() {
        let heads: Vec<(String, Oid)> = [
            ("HEAD", 1),
            ("refs/heads/main", 1),
            ("refs/tags/v1.2.0", 2),
            ("refs/tags/v1.2.0^{}", 3),
            ("refs/tags/1.10.0", 4),
            ("refs/tags/v2.0.0", 5),
            ("refs/tags/v1.11.0-rc.1", 6),
            ("refs/tags/not-a-version", 7),
            ("refs/pull/7/head", 8),
        ]
        .into_iter()
        .map(|(name, n)| (name.to_string(), oid(n)))
        .collect();
        let resolved = |r: GitRef| resolve(&heads, &session(r));
        assert_eq!(resolved(GitRef::Branch("main".into())).unwrap(), ("refs/heads/main".into(), oid(1)));
        assert_eq!(resolved(GitRef::Tag("v1.2.0".into())).unwrap(), ("refs/tags/v1.2.0".into(), oid(3)));
        assert_eq!(resolved(GitRef::Semver(">=1.0.0 <2".into())).unwrap(), ("refs/tags/1.10.0".into(), oid(4)));
        assert_eq!(resolved(GitRef::Semver("~1.2".into())).unwrap(), ("refs/tags/v1.2.0".into(), oid(3)));
        assert_eq!(resolved(GitRef::Commit(oid(5).to_string())).unwrap(), ("refs/tags/v2.0.0".into(), oid(5)));
        assert_eq!(resolved(GitRef::Commit(oid(9).to_string())).unwrap(), (oid(9).to_string(), oid(9)));
        let pull = "refs/pull/7/head";
        assert_eq!(resolved(GitRef::Ref(pull.into())).unwrap(), (pull.into(), oid(8)));
        for missing in [
            GitRef::Branch("dev".into()),
            GitRef::Tag("v9".into()),
            GitRef::Semver(">=3".into()),
            GitRef::Ref("refs/pull/8/head".into()),
        ] {
            assert_eq!(resolved(missing).unwrap_err().failure, FetchFailure::RefNotFound);
        }
        assert_eq!(resolved(GitRef::Semver("not a range".into())).unwrap_err().failure, FetchFailure::RefNotFound);
    }

    #[test]
    fn mirror_names_are_a_hash_never_the_url() {
        let name = mirror_name(&SourceUrl::parse("https://example.com/org/repo.git").unwrap().normalized());
        assert!(is_mirror_name(&name) && !name.contains("example"));
        assert_eq!(name, mirror_name(&SourceUrl::parse("https://EXAMPLE.com/org/repo").unwrap().normalized()));
    }
}
