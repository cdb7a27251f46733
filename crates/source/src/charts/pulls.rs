//! The controller's remote charts: archives pulled, by the digest `charts.lock` pins, into one
//! cache every EnvironmentSync shares, within the disk budget of the git mirrors. Where the CLI
//! renders only what `weaver charts fetch` put in the machine's cache, a reconcile pulls what
//! its render needs on first use: one pull per digest however many reconciles need it at once,
//! with the credentials of the EnvironmentSync's Secrets or anonymously (never with the
//! credentials of the controller's machine, which are not a tenant's), and an archive whose
//! digest is not the pinned one is refused, as the CLI refuses it.
//!
//! An archive pulled anonymously is public: every reconcile whose lock pins its digest reads it.
//! One pulled with credentials is given only to reconciles with the same credentials; any other
//! downloads it again with its own (or none) before it is given it, so that a tenant never reads
//! a private chart it could not pull by knowing its digest. An archive found on disk at start is
//! nobody's until pulled again.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{Cache, Fetcher, Lock, cached_archive, http, pinned};
use crate::budget::{Budget, Flights, Kind, Lease, lock as locked_state};
use weaver_core::error::{Error, Result};
use weaver_project::chart::RemoteChart;

/// The archives of one controller process, in `<dir>/sha256/<hex>.tgz` as the CLI's cache.
/// `Send + Sync`: share it with an `Arc`.
pub struct ChartCache {
    cache: Cache,
    /// Shared with the git mirrors.
    budget: Arc<Budget>,
    flights: Flights<String, Result<Arc<Lease>>>,
    /// Who may be given each archive, by digest.
    readers: Mutex<HashMap<String, Readers>>,
}

/// Who may be given an archive.
enum Readers {
    /// It was pulled anonymously.
    Anyone,
    /// The fingerprints of the credentials it was pulled with.
    Holders(HashSet<Vec<u8>>),
}

/// What a reconcile pulls with: the machine its EnvironmentSync's Secrets make, and their
/// fingerprint (None for none: anonymous pulls).
pub struct Puller {
    machine: Arc<http::Machine>,
    fingerprint: Option<Vec<u8>>,
}

impl Puller {
    /// No credentials: what is pulled is public.
    pub fn anonymous() -> Puller {
        Puller { machine: Arc::new(http::Machine::anonymous()), fingerprint: None }
    }

    /// With the credentials of `machine` ([`http::Machine::in_cluster`]), told apart from
    /// others by `fingerprint` (a digest of the Secrets they were read from).
    pub fn with_credentials(machine: http::Machine, fingerprint: Vec<u8>) -> Puller {
        Puller { machine: Arc::new(machine), fingerprint: Some(fingerprint) }
    }
}

impl ChartCache {
    /// The cache in `dir` (created if missing), within `budget`; archives already there are
    /// kept, their last use taken from their modification time.
    pub fn new(dir: PathBuf, budget: Arc<Budget>) -> Result<ChartCache> {
        let archives = dir.join("sha256");
        std::fs::create_dir_all(&archives).map_err(|e| Error::io("create the chart cache directory", &archives, e))?;
        let entries =
            std::fs::read_dir(&archives).map_err(|e| Error::io("read the chart cache directory", &archives, e))?;
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else { continue };
            if !metadata.is_file() || entry.path().extension().is_none_or(|ext| ext != "tgz") {
                continue;
            }
            let last_used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            budget.found(entry.path(), Kind::Chart, metadata.len(), last_used);
        }
        budget.evict();
        Ok(ChartCache { cache: Cache { dir }, budget, flights: Flights::new(), readers: Mutex::default() })
    }

    /// The archive `lock` pins for `chart`, in the cache and verified: pulled with `puller`'s
    /// credentials when absent, damaged or not yet shown to be theirs to read, one pull per
    /// digest and credentials at once. The lease keeps it in the cache.
    fn pull(&self, lock: &Lock, chart: &RemoteChart, digest: &str, puller: &Puller) -> Result<Arc<Lease>> {
        let path = self.cache.path(digest);
        let flight = match &puller.fingerprint {
            None => digest.to_string(),
            Some(fingerprint) => format!("{digest} {}", hex::encode(fingerprint)),
        };
        // One that may read an archive the cache holds takes it at once, never behind another's
        // download of it (a tenant's credentials being shown, slowly, to a repository).
        if self.may_read(digest, puller)
            && let Some(lease) = self.budget.lease_held(&path)
            && let Ok(Some(Ok(_))) = self.cache.read(digest)
        {
            // Its use counts: what is used least recently goes, as after a pull.
            self.budget.evict();
            return Ok(lease);
        }
        let result = self.flights.run(
            flight,
            || {
                let writing = self.budget.writing(&path, Kind::Chart);
                let _held = locked_state(&writing);
                let mut fetcher = Fetcher::sharing(puller.machine.clone(), self.cache.clone());
                match self.may_read(digest, puller) {
                    true => fetcher.fetch(lock, chart)?,
                    false => fetcher.fetch_again(lock, chart)?,
                };
                self.readable_by(digest, puller);
                let size = std::fs::metadata(&path).map_err(|e| Error::io("read cached chart", &path, e))?.len();
                Ok(self.budget.lease(&path, Kind::Chart, Some(size)))
            },
            || Err(Error::new(format!("the pull of chart {} panicked", chart.describe()))),
        );
        if result.is_ok() {
            self.budget.evict();
        }
        result
    }

    pub fn dir(&self) -> &Path {
        &self.cache.dir
    }

    /// Whether `puller` may be given the archive of `digest` without downloading it.
    fn may_read(&self, digest: &str, puller: &Puller) -> bool {
        match (locked_state(&self.readers).get(digest), &puller.fingerprint) {
            (Some(Readers::Anyone), _) => true,
            (Some(Readers::Holders(holders)), Some(fingerprint)) => holders.contains(fingerprint),
            _ => false,
        }
    }

    /// `puller` pulled the archive of `digest`: anyone may be given it when it did anonymously.
    fn readable_by(&self, digest: &str, puller: &Puller) {
        let mut readers = locked_state(&self.readers);
        match (&puller.fingerprint, readers.get_mut(digest)) {
            (_, Some(Readers::Anyone)) => {}
            (None, _) => {
                readers.insert(digest.to_string(), Readers::Anyone);
            }
            (Some(fingerprint), Some(Readers::Holders(holders))) => {
                holders.insert(fingerprint.clone());
            }
            (Some(fingerprint), None) => {
                readers.insert(digest.to_string(), Readers::Holders(HashSet::from([fingerprint.clone()])));
            }
        }
    }
}

/// One reconcile's remote charts: each pulled into the [`ChartCache`] on first use and leased
/// until the reconcile ends, so that nothing it renders (its plan, then its apply) is removed
/// under it.
pub struct Pulls {
    cache: Arc<ChartCache>,
    puller: Puller,
    /// Leases by digest.
    held: Mutex<HashMap<String, Arc<Lease>>>,
}

impl fmt::Debug for Pulls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pulls({}, {} held)", self.cache.dir().display(), locked_state(&self.held).len())
    }
}

impl Pulls {
    /// Anonymous pulls.
    pub fn new(cache: Arc<ChartCache>) -> Pulls {
        Pulls::with(cache, Puller::anonymous())
    }

    /// Pulls with `puller`'s credentials.
    pub fn with(cache: Arc<ChartCache>, puller: Puller) -> Pulls {
        Pulls { cache, puller, held: Mutex::new(HashMap::new()) }
    }

    /// The credentials this reconcile pulls with (an OCI artifact of its source too).
    pub fn machine(&self) -> Arc<http::Machine> {
        self.puller.machine.clone()
    }

    /// As [`cached_archive`], pulling what the cache lacks first.
    pub fn archive(&self, lock: &Lock, user: &str, chart: &RemoteChart) -> Result<(Vec<u8>, PathBuf)> {
        let digest = &pinned(lock, user, chart)?.digest;
        // Not held while pulling: the run's other charts pull meanwhile.
        if !locked_state(&self.held).contains_key(digest) {
            let lease = self.cache.pull(lock, chart, digest, &self.puller).map_err(|e| e.context(user))?;
            locked_state(&self.held).insert(digest.clone(), lease);
        }
        cached_archive(lock, &self.cache.cache, user, chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::LockedChart;
    use crate::charts::http::Credentials;
    use crate::{CacheLimits, charts::sha256_digest};
    use weaver_test_support::http_server::TestServer;

    const ARCHIVE: &[u8] = b"the private chart's archive";
    const PASSWORD: &str = "pr1vate-Chart-pa55";

    /// A repository serving [`ARCHIVE`] only to `reader`:[`PASSWORD`], a lock pinning it, and
    /// the release's chart.
    fn private_repository() -> (TestServer, Lock, RemoteChart) {
        use base64::Engine;
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("reader:{PASSWORD}")));
        let server = TestServer::start(move |_, request| match request.authorization == expected {
            true => ("200 OK", String::new(), ARCHIVE.to_vec()),
            false => ("401 Unauthorized", "WWW-Authenticate: Basic realm=\"charts\"\r\n".into(), Vec::new()),
        });
        let repository = format!("{}/charts", server.origin());
        let chart = RemoteChart {
            repository: repository.clone(),
            repository_name: None,
            name: "web".into(),
            version: "1.0.0".into(),
            plain_http: false,
            keys: None,
        };
        let lock = Lock {
            charts: vec![LockedChart {
                repository: repository.clone(),
                name: "web".into(),
                constraint: "1.0.0".into(),
                version: "1.0.0".into(),
                url: format!("{repository}/web-1.0.0.tgz"),
                digest: sha256_digest(ARCHIVE),
                required_by: None,
                signed_by: None,
            }],
        };
        (server, lock, chart)
    }

    /// [`private_repository`]'s lock and chart, moved to `server`.
    fn served_by(server: &TestServer) -> (Lock, RemoteChart) {
        let (_, mut lock, chart) = private_repository();
        let moved = |url: &str| url.replacen(&chart.repository, &format!("{}/charts", server.origin()), 1);
        lock.charts[0].repository = moved(&lock.charts[0].repository);
        lock.charts[0].url = moved(&lock.charts[0].url);
        (lock, RemoteChart { repository: moved(&chart.repository), ..chart })
    }

    /// A chart cache of 1 MiB in `dir`.
    fn small_cache(dir: &tempfile::TempDir) -> Arc<ChartCache> {
        let budget = Budget::new(CacheLimits { max_disk_bytes: 1 << 20, max_repositories: 1 });
        Arc::new(ChartCache::new(dir.path().to_path_buf(), budget).unwrap())
    }

    fn puller(prefix: &str, password: &str) -> Puller {
        let mut entry = Credentials::given(prefix.to_string(), "Secret app/charts (spec.chartCredentials[0])".into());
        entry.username = Some("reader".into());
        entry.password = Some(password.into());
        Puller::with_credentials(http::Machine::in_cluster(vec![entry], Vec::new()), password.as_bytes().to_vec())
    }

    #[test]
    fn a_private_archive_is_given_only_to_the_credentials_that_pulled_it() {
        let (server, lock, chart) = private_repository();
        let dir = tempfile::tempdir().unwrap();
        let cache = small_cache(&dir);
        let downloads = || server.received().len();

        let with_them = Pulls::with(cache.clone(), puller(&server.origin(), PASSWORD));
        assert_eq!(with_them.archive(&lock, "release `web`", &chart).unwrap().0, ARCHIVE);
        assert_eq!(downloads(), 1);
        // The same credentials (another reconcile of the same Secrets) read the cache.
        let again = Pulls::with(cache.clone(), puller(&server.origin(), PASSWORD));
        assert_eq!(again.archive(&lock, "release `web`", &chart).unwrap().0, ARCHIVE);
        assert_eq!(downloads(), 1);

        // Cached, but not theirs: anonymous pulls and other credentials are asked to download
        // it, and the repository refuses them, naming the repository and where the password
        // came from, never the password.
        let anonymous = Pulls::new(cache.clone()).archive(&lock, "release `web`", &chart).unwrap_err();
        let help = anonymous.help.clone().unwrap_or_default();
        assert!(anonymous.message.contains("answered HTTP 401"), "{anonymous:?}");
        assert!(
            help.contains(&format!("repository {}/charts refused an anonymous request", server.origin())),
            "{help}"
        );
        assert!(help.contains("spec.chartCredentials"), "{help}");
        let wrong = Pulls::with(cache.clone(), puller(&server.origin(), "not-the-pa55word"));
        let refused = wrong.archive(&lock, "release `web`", &chart).unwrap_err();
        let shown = format!("{} {}", refused.message, refused.help.clone().unwrap_or_default());
        assert!(shown.contains("refused the credentials of Secret app/charts (spec.chartCredentials[0])"), "{shown}");
        assert!(!shown.contains("not-the-pa55word") && !shown.contains(PASSWORD), "{shown}");
        // Anonymous: one request; the wrong password: up front, then to the Basic challenge.
        assert_eq!(downloads(), 4);
    }

    #[test]
    fn credentials_that_may_read_a_cached_archive_never_wait_for_anothers_slow_download_of_it() {
        use base64::Engine;
        use std::time::{Duration, Instant};
        let basic = |password: &str| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("reader:{password}")))
        };
        let (expected, slow) = (basic(PASSWORD), basic("slow-pa55"));
        // The right password at once; the other refused once the test has timed the first
        // (or after ten seconds), so that nothing waits longer than the test needs.
        let timed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let released = timed.clone();
        let server = TestServer::start(move |_, request| {
            let held = Instant::now();
            while request.authorization == slow
                && !released.load(std::sync::atomic::Ordering::SeqCst)
                && held.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            match request.authorization == expected {
                true => ("200 OK", String::new(), ARCHIVE.to_vec()),
                false => ("401 Unauthorized", "WWW-Authenticate: Basic realm=\"charts\"\r\n".into(), Vec::new()),
            }
        });
        let (lock, chart) = served_by(&server);
        let dir = tempfile::tempdir().unwrap();
        let cache = small_cache(&dir);
        Pulls::with(cache.clone(), puller(&server.origin(), PASSWORD)).archive(&lock, "release `web`", &chart).unwrap();

        let other = {
            let (cache, lock, chart, origin) = (cache.clone(), lock.clone(), chart.clone(), server.origin());
            std::thread::spawn(move || {
                Pulls::with(cache, puller(&origin, "slow-pa55")).archive(&lock, "release `web`", &chart).unwrap_err()
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let again = Pulls::with(cache.clone(), puller(&server.origin(), PASSWORD));
        assert_eq!(again.archive(&lock, "release `web`", &chart).unwrap().0, ARCHIVE);
        assert!(started.elapsed() < Duration::from_secs(1), "waited {:?} for the other's download", started.elapsed());
        timed.store(true, std::sync::atomic::Ordering::SeqCst);
        let refused = other.join().unwrap();
        assert!(refused.message.contains("answered HTTP 401"), "{refused:?}");
    }

    #[test]
    fn an_archive_pulled_anonymously_is_everyones() {
        let server = TestServer::start(|_, _| ("200 OK", String::new(), ARCHIVE.to_vec()));
        let (lock, chart) = served_by(&server);
        let dir = tempfile::tempdir().unwrap();
        let cache = small_cache(&dir);
        Pulls::new(cache.clone()).archive(&lock, "release `web`", &chart).unwrap();
        Pulls::with(cache.clone(), puller("https://elsewhere.example", PASSWORD))
            .archive(&lock, "release `web`", &chart)
            .unwrap();
        assert_eq!(server.received().len(), 1, "a public archive is read from the cache by anyone");
    }
}
