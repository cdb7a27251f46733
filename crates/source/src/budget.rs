//! The controller's disk budget, which its git mirrors and chart archives share: each entry's
//! size, last use and leases, and the removal of the least recently used entries nobody leases
//! or writes until the whole is within its limits. And [`Flights`]: one piece of work per key
//! at a time, which callers asking for the same key at once wait for and share.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

/// How large the cache may grow. Entries being written or leased are never removed, so the
/// cache can exceed the limits while they are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Total size of the mirrors' files and the chart archives.
    pub max_disk_bytes: u64,
    /// Git mirrors at most (chart archives are counted in bytes alone).
    pub max_repositories: usize,
}

/// What an entry is, which says how it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A bare git mirror: a directory.
    Mirror,
    /// A chart archive: a file.
    Chart,
    /// An OCI artifact's files, unpacked: a directory.
    Artifact,
}

struct Entry {
    kind: Kind,
    /// Held while the entry is written (a fetch into a mirror, a chart's pull) and while it is
    /// removed.
    lock: Arc<Mutex<()>>,
    size: u64,
    last_used: SystemTime,
    leases: usize,
}

/// The entries of one controller's cache directory, by path. `Send + Sync`: share it with an
/// `Arc`.
pub struct Budget {
    limits: CacheLimits,
    entries: Mutex<HashMap<PathBuf, Entry>>,
    /// Bytes the fetches under way have received so far, which are on disk (packs being
    /// written) before any eviction can make room: together, at most the whole budget.
    receiving: AtomicU64,
}

/// Keeps an entry from removal while it lives (shared, through an `Arc`, by those who got it
/// from one fetch or pull).
pub struct Lease {
    budget: Arc<Budget>,
    path: PathBuf,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.path.display())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut entries = lock(&self.budget.entries);
        if let Some(entry) = entries.get_mut(&self.path) {
            entry.leases = entry.leases.saturating_sub(1);
            entry.last_used = SystemTime::now();
        }
    }
}

/// What the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub mirrors: usize,
    pub charts: usize,
    /// Of mirrors and charts together.
    pub bytes: u64,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Budget {
    pub fn new(limits: CacheLimits) -> Arc<Budget> {
        Arc::new(Budget { limits, entries: Mutex::new(HashMap::new()), receiving: AtomicU64::new(0) })
    }

    /// An entry found on disk when the cache opens, last used when it was last modified.
    pub(crate) fn found(&self, path: PathBuf, kind: Kind, size: u64, last_used: SystemTime) {
        lock(&self.entries).insert(path, Entry { kind, lock: Arc::new(Mutex::new(())), size, last_used, leases: 0 });
    }

    /// The lock whoever writes `path` holds (the entry is made, empty, if it is new): removal
    /// passes over an entry while it is held.
    pub(crate) fn writing(&self, path: &Path, kind: Kind) -> Arc<Mutex<()>> {
        let mut entries = lock(&self.entries);
        entry(&mut entries, path, kind).lock.clone()
    }

    /// `path` used now, at `size` (None: as it was), and leased until the lease drops.
    pub(crate) fn lease(self: &Arc<Self>, path: &Path, kind: Kind, size: Option<u64>) -> Arc<Lease> {
        let mut entries = lock(&self.entries);
        let entry = entry(&mut entries, path, kind);
        if let Some(size) = size {
            entry.size = size;
        }
        entry.last_used = SystemTime::now();
        entry.leases += 1;
        Arc::new(Lease { budget: self.clone(), path: path.to_path_buf() })
    }

    /// The most one entry may take: the whole budget (a fetch larger is refused).
    pub(crate) fn max_disk_bytes(&self) -> u64 {
        self.limits.max_disk_bytes
    }

    /// Counts `n` more bytes received by a fetch under way: Err with what the fetches under
    /// way hold together, when that is over the budget (the fetch fails; its bytes are
    /// counted until [`Budget::received_done`]).
    pub(crate) fn receive(&self, n: u64) -> Result<(), u64> {
        let together = self.receiving.fetch_add(n, Ordering::Relaxed) + n;
        if together <= self.limits.max_disk_bytes { Ok(()) } else { Err(together) }
    }

    /// A fetch that received `n` bytes ended: they are the mirror's now (its size), or gone.
    pub(crate) fn received_done(&self, n: u64) {
        let _ = self.receiving.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| Some(held.saturating_sub(n)));
    }

    /// `path` used now, at `size` (None: as it was), if the budget still holds it.
    pub(crate) fn used(&self, path: &Path, size: Option<u64>) {
        if let Some(entry) = lock(&self.entries).get_mut(path) {
            entry.size = size.unwrap_or(entry.size);
            entry.last_used = SystemTime::now();
        }
    }

    /// A lease of `path` used now, if the budget still holds it (it was not evicted).
    pub(crate) fn lease_held(self: &Arc<Self>, path: &Path) -> Option<Arc<Lease>> {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(path)?;
        entry.last_used = SystemTime::now();
        entry.leases += 1;
        Some(Arc::new(Lease { budget: self.clone(), path: path.to_path_buf() }))
    }

    /// Removes least recently used entries, neither leased nor being written, until the cache
    /// is within its limits.
    pub(crate) fn evict(&self) {
        // Under the lock each is taken out of the budget and moved aside (a rename: quick, and
        // a fetch or pull of it that starts next makes a new one); removed after the lock.
        let mut discarded = Vec::new();
        {
            let mut entries = lock(&self.entries);
            let mut candidates: Vec<(SystemTime, PathBuf)> = entries
                .iter()
                .filter(|(_, entry)| entry.leases == 0)
                .map(|(path, entry)| (entry.last_used, path.clone()))
                .collect();
            candidates.sort();
            let mut candidates = candidates.into_iter();
            loop {
                let usage = usage(&entries);
                if usage.bytes <= self.limits.max_disk_bytes && usage.mirrors <= self.limits.max_repositories {
                    break;
                }
                let Some((_, path)) = candidates.next() else {
                    tracing::warn!(
                        "the cache holds {} git mirrors and {} charts, {} bytes, over its limits, and every one is in use",
                        usage.mirrors,
                        usage.charts,
                        usage.bytes
                    );
                    break;
                };
                let entry = &entries[&path];
                // Within the byte limit, only mirrors beyond their number need to go.
                if usage.bytes <= self.limits.max_disk_bytes && entry.kind != Kind::Mirror {
                    continue;
                }
                let entry_lock = entry.lock.clone();
                // An entry being written is skipped (its writer holds the lock).
                let Ok(_removing) = entry_lock.try_lock() else { continue };
                match move_aside(&path) {
                    Ok(moved) => {
                        entries.remove(&path);
                        discarded.extend(moved);
                    }
                    Err(e) => tracing::warn!("cannot remove {} from the cache: {e}", path.display()),
                }
            }
        }
        for path in discarded {
            remove_discarded(&path);
        }
    }

    pub fn usage(&self) -> Usage {
        usage(&lock(&self.entries))
    }
}

/// The entry of `path`, made empty if it is new.
fn entry<'a>(entries: &'a mut HashMap<PathBuf, Entry>, path: &Path, kind: Kind) -> &'a mut Entry {
    entries.entry(path.to_path_buf()).or_insert_with(|| Entry {
        kind,
        lock: Arc::new(Mutex::new(())),
        size: 0,
        last_used: SystemTime::now(),
        leases: 0,
    })
}

fn usage(entries: &HashMap<PathBuf, Entry>) -> Usage {
    let count = |kind| entries.values().filter(|e| e.kind == kind).count();
    Usage { mirrors: count(Kind::Mirror), charts: count(Kind::Chart), bytes: entries.values().map(|e| e.size).sum() }
}

/// Work in progress by key: a caller asking for a key already being worked on waits for that
/// work and gets a clone of its result.
pub(crate) struct Flights<K, V> {
    flights: Mutex<HashMap<K, Arc<Flight<V>>>>,
}

struct Flight<V> {
    result: Mutex<Option<V>>,
    done: Condvar,
    started: Instant,
}

impl<V: Clone> Flight<V> {
    /// Its result, once it landed.
    fn landed(&self) -> V {
        let mut result = lock(&self.result);
        while result.is_none() {
            result = self.done.wait(result).unwrap_or_else(PoisonError::into_inner);
        }
        result.clone().expect("checked above")
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub fn new() -> Flights<K, V> {
        Flights { flights: Mutex::new(HashMap::new()) }
    }

    /// `work`'s result, or that of the work already under way for `key`; `panicked` is what
    /// the waiters get if the work panics.
    pub fn run(&self, key: K, work: impl FnOnce() -> V, panicked: impl Fn() -> V) -> V {
        self.run_since(key, None, work, panicked)
    }

    /// [`Flights::run`], except that a result of another caller's work that `failed` says failed
    /// is not taken: `work` runs then, once that work landed. One caller's failure (its deadline
    /// passed, its credentials refused) is never another's.
    pub fn run_own_failure(
        &self,
        key: K,
        failed: impl Fn(&V) -> bool,
        work: impl FnOnce() -> V,
        panicked: impl Fn() -> V,
    ) -> V {
        let work = std::cell::RefCell::new(Some(work));
        let take = || work.borrow_mut().take().expect("run once");
        let result = self.run(key.clone(), || take()(), &panicked);
        let joined = work.borrow().is_some();
        match joined && failed(&result) {
            true => self.run_since(key, Some(Instant::now()), take(), panicked),
            false => result,
        }
    }

    /// [`Flights::run`], joining only work that started at or after `since` (when given): work
    /// under way that started before it is waited for, then `work` runs. So one key's work is
    /// never done twice at once, and each result comes from work started later than the last.
    pub fn run_since(&self, key: K, since: Option<Instant>, work: impl FnOnce() -> V, panicked: impl Fn() -> V) -> V {
        let flight = loop {
            let earlier = {
                let mut flights = lock(&self.flights);
                match flights.get(&key) {
                    Some(flight) if since.is_none_or(|since| flight.started >= since) => {
                        let flight = flight.clone();
                        drop(flights);
                        return flight.landed();
                    }
                    Some(flight) => flight.clone(),
                    None => {
                        let started = Instant::now();
                        let flight = Arc::new(Flight { result: Mutex::new(None), done: Condvar::new(), started });
                        flights.insert(key.clone(), flight.clone());
                        break flight;
                    }
                }
            };
            earlier.landed();
        };
        // Ends the flight, then publishes the result (`panicked`'s if the work panicked): a
        // caller woken by it finds the key free.
        struct Land<'a, K: Hash + Eq, V, P: Fn() -> V> {
            flights: &'a Mutex<HashMap<K, Arc<Flight<V>>>>,
            key: Option<K>,
            flight: Arc<Flight<V>>,
            result: Option<V>,
            panicked: P,
        }
        impl<K: Hash + Eq, V, P: Fn() -> V> Drop for Land<'_, K, V, P> {
            fn drop(&mut self) {
                if let Some(key) = self.key.take() {
                    lock(self.flights).remove(&key);
                }
                let mut result = lock(&self.flight.result);
                *result = Some(self.result.take().unwrap_or_else(&self.panicked));
                self.flight.done.notify_all();
            }
        }
        let mut land = Land { flights: &self.flights, key: Some(key), flight, result: None, panicked };
        let result = work();
        land.result = Some(result.clone());
        drop(land);
        result
    }
}

/// The suffix of a directory moved aside to be removed.
pub(crate) const DISCARDED: &str = ".discarded";

/// Renames `path` to a name no entry has, in its directory; None when nothing is at `path`.
pub(crate) fn move_aside(path: &Path) -> std::io::Result<Option<PathBuf>> {
    static DISCARDS: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let n = DISCARDS.fetch_add(1, Ordering::Relaxed);
    let aside = path.with_file_name(format!("{name}.{}-{n}{DISCARDED}", std::process::id()));
    match std::fs::rename(path, &aside) {
        Ok(()) => Ok(Some(aside)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes what [`move_aside`] moved, a directory or a file.
pub(crate) fn remove_discarded(path: &Path) {
    let removed = match path.is_dir() {
        true => std::fs::remove_dir_all(path),
        false => std::fs::remove_file(path),
    };
    if let Err(e) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove the discarded {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget over `dir` holding charts `a`, `b`, `c` of 100 bytes each, used in that order.
    fn three_charts(dir: &Path, limits: CacheLimits) -> (Arc<Budget>, [PathBuf; 3]) {
        let budget = Budget::new(limits);
        let paths = ["a", "b", "c"].map(|name| dir.join(format!("{name}.tgz")));
        for (i, path) in paths.iter().enumerate() {
            std::fs::write(path, [0u8; 100]).unwrap();
            let used = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            budget.found(path.clone(), Kind::Chart, 100, used);
        }
        (budget, paths)
    }

    #[test]
    fn the_least_recently_used_go_first_until_the_bytes_fit() {
        let dir = tempfile::tempdir().unwrap();
        let (budget, [a, b, c]) = three_charts(dir.path(), CacheLimits { max_disk_bytes: 150, max_repositories: 9 });
        budget.evict();
        assert_eq!((a.exists(), b.exists(), c.exists()), (false, false, true));
        assert_eq!(budget.usage(), Usage { mirrors: 0, charts: 1, bytes: 100 });
    }

    #[test]
    fn a_leased_or_written_entry_stays_and_the_next_goes_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let (budget, [a, b, c]) = three_charts(dir.path(), CacheLimits { max_disk_bytes: 250, max_repositories: 9 });
        let lease = budget.lease(&a, Kind::Chart, None);
        // `a` is now the most recently used and leased; `b` is written to.
        let writing = budget.writing(&b, Kind::Chart);
        let held = writing.lock().unwrap();
        budget.evict();
        assert_eq!((a.exists(), b.exists(), c.exists()), (true, true, false));
        drop(held);
        drop(lease);
        let tight = Budget::new(CacheLimits { max_disk_bytes: 0, max_repositories: 9 });
        tight.found(a.clone(), Kind::Chart, 100, SystemTime::now());
        let kept = tight.lease(&a, Kind::Chart, None);
        tight.evict();
        assert!(a.exists(), "a leased entry is never removed, even over the limit");
        drop(kept);
        tight.evict();
        assert!(!a.exists() && tight.usage() == Usage::default());
    }

    #[test]
    fn mirrors_beyond_their_number_go_but_not_charts_within_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (budget, [a, ..]) = three_charts(dir.path(), CacheLimits { max_disk_bytes: 1000, max_repositories: 1 });
        let mirrors = ["m1", "m2"].map(|name| dir.path().join(name));
        for (i, mirror) in mirrors.iter().enumerate() {
            std::fs::create_dir_all(mirror.join("objects")).unwrap();
            std::fs::write(mirror.join("objects/pack"), [0u8; 10]).unwrap();
            let used = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2000 + i as u64);
            budget.found(mirror.clone(), Kind::Mirror, 10, used);
        }
        budget.evict();
        assert_eq!((a.exists(), mirrors[0].exists(), mirrors[1].exists()), (true, false, true));
        assert_eq!(budget.usage(), Usage { mirrors: 1, charts: 3, bytes: 310 });
    }

    #[test]
    fn one_flight_per_key_and_every_caller_gets_its_result() {
        let flights: Arc<Flights<&str, usize>> = Arc::new(Flights::new());
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Arc::new(std::sync::Barrier::new(4));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (flights, runs, started) = (flights.clone(), runs.clone(), started.clone());
                std::thread::spawn(move || {
                    started.wait();
                    flights.run(
                        "chart",
                        || {
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 7
                        },
                        || 0,
                    )
                })
            })
            .collect();
        let results: Vec<usize> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1, "{results:?}");
        assert_eq!(results, [7, 7, 7, 7]);
        // Once landed, the key is free: the next call works again.
        assert_eq!(flights.run("chart", || 1, || 0), 1);
    }

    #[test]
    fn a_joined_failure_is_not_taken_and_the_callers_own_work_runs_after_it() {
        let flights: Arc<Flights<&str, Result<usize, String>>> = Arc::new(Flights::new());
        let failing = {
            let flights = flights.clone();
            std::thread::spawn(move || {
                let slow_failure = || {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Err("its deadline passed".to_string())
                };
                flights.run_own_failure("layer", Result::is_err, slow_failure, || Err("panicked".into()))
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        let own = flights.run_own_failure("layer", Result::is_err, || Ok(7), || Err("panicked".into()));
        assert_eq!(own, Ok(7), "its own work, after the failure it joined");
        assert_eq!(failing.join().unwrap(), Err("its deadline passed".to_string()));
        // A joined success is taken as it is.
        let landed = {
            let flights = flights.clone();
            std::thread::spawn(move || {
                let slow = || {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(1)
                };
                flights.run_own_failure("layer", Result::is_err, slow, || Err("panicked".into()))
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(flights.run_own_failure("layer", Result::is_err, || Ok(2), || Err("panicked".into())), Ok(1));
        assert_eq!(landed.join().unwrap(), Ok(1));
    }

    #[test]
    fn work_started_before_since_is_waited_for_not_joined_and_later_work_is_joined() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let flights: Arc<Flights<&str, (usize, Instant, Instant)>> = Arc::new(Flights::new());
        // Each run says which it was, when its work began and when it ended.
        let work = |n: usize, begun: std::sync::mpsc::Sender<()>| {
            move || {
                let began = Instant::now();
                begun.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                (n, began, Instant::now())
            }
        };
        let asking = |since: Option<Instant>, n: usize, begun: std::sync::mpsc::Sender<()>| {
            let flights = flights.clone();
            let work = work(n, begun);
            std::thread::spawn(move || flights.run_since("repo", since, work, || (0, Instant::now(), Instant::now())))
        };
        let (begun, first_began) = channel();
        let first = asking(None, 1, begun);
        first_began.recv().unwrap();
        let since = Instant::now();
        let (begun, second_began) = channel();
        let second = asking(Some(since), 2, begun);
        // Without `since`, the work under way will do.
        let (begun, _) = channel();
        let content = asking(None, 3, begun);
        second_began.recv().unwrap();
        // Started after `since`: joined, not run again.
        let (begun, _) = channel();
        let joining = asking(Some(since), 4, begun);
        let [first, second, content, joining] = [first, second, content, joining].map(|c| c.join().unwrap());
        assert_eq!((first.0, content.0), (1, 1));
        assert_eq!((second.0, joining.0), (2, 2));
        assert!(second.1 >= first.2, "the second work began before the first ended");
    }
}
