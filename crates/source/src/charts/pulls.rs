//! The controller's remote charts: archives pulled, by the digest `charts.lock` pins, into one
//! cache every EnvironmentSync shares, within the disk budget of the git mirrors. Where the CLI
//! renders only what `weaver charts fetch` put in the machine's cache, a reconcile pulls what
//! its render needs on first use: one pull per digest however many reconciles need it at once,
//! anonymously (never with the credentials of the controller's machine, which are not a
//! tenant's), and an archive whose digest is not the pinned one is refused, as the CLI refuses it.

use std::collections::HashMap;
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
        Ok(ChartCache { cache: Cache { dir }, budget, flights: Flights::new() })
    }

    /// The archive `lock` pins for `chart`, in the cache and verified: pulled when absent or
    /// damaged, one pull per digest at once. The lease keeps it in the cache.
    fn pull(&self, lock: &Lock, chart: &RemoteChart, digest: &str) -> Result<Arc<Lease>> {
        let path = self.cache.path(digest);
        let result = self.flights.run(
            digest.to_string(),
            || {
                let writing = self.budget.writing(&path, Kind::Chart);
                let _held = locked_state(&writing);
                Fetcher::new(http::Machine::anonymous(), self.cache.clone()).fetch(lock, chart)?;
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
}

/// One reconcile's remote charts: each pulled into the [`ChartCache`] on first use and leased
/// until the reconcile ends, so that nothing it renders (its plan, then its apply) is removed
/// under it.
pub struct Pulls {
    cache: Arc<ChartCache>,
    /// Leases by digest.
    held: Mutex<HashMap<String, Arc<Lease>>>,
}

impl fmt::Debug for Pulls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pulls({}, {} held)", self.cache.dir().display(), locked_state(&self.held).len())
    }
}

impl Pulls {
    pub fn new(cache: Arc<ChartCache>) -> Pulls {
        Pulls { cache, held: Mutex::new(HashMap::new()) }
    }

    /// As [`cached_archive`], pulling what the cache lacks first.
    pub fn archive(&self, lock: &Lock, user: &str, chart: &RemoteChart) -> Result<(Vec<u8>, PathBuf)> {
        let digest = &pinned(lock, user, chart)?.digest;
        // Not held while pulling: the run's other charts pull meanwhile.
        if !locked_state(&self.held).contains_key(digest) {
            let lease = self.cache.pull(lock, chart, digest).map_err(|e| e.context(user))?;
            locked_state(&self.held).insert(digest.clone(), lease);
        }
        cached_archive(lock, &self.cache.cache, user, chart)
    }
}
