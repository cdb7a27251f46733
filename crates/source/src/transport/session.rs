//! One fetch or push as its transport sees it: the URL, credentials and CA, the byte budget it
//! draws on, and how it ended (`failure`), shared by the HTTP and ssh subtransports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::{CredentialNames, Credentials, FetchError, FetchFailure, GitRef, SourceUrl};

/// One fetch, as its transport sees it.
pub(crate) struct Session {
    pub url: SourceUrl,
    pub reference: GitRef,
    pub credentials: Credentials,
    /// How messages name the credentials' parts.
    pub names: CredentialNames,
    pub ca_pem: Option<Vec<u8>>,
    /// The first failure a transport understood (a 401, a refused host key), which explains the
    /// libgit2 error that follows it better than libgit2 can.
    failure: Mutex<Option<FetchError>>,
    /// Bytes the transport read from the server.
    pub bytes_read: AtomicU64,
    /// The cache's disk budget: the server may send no more than it, and all fetches under
    /// way together no more either (each writes its pack before any eviction makes room).
    budget: Arc<Budget>,
    /// When the fetch must have ended, so that a server that stalls cannot hold a reconcile.
    deadline: Instant,
    timeout: Duration,
    /// `git-upload-pack` (a fetch) or `git-receive-pack` (a push): the server's program.
    pub service: &'static str,
}

/// The server's program of a fetch, and of a push.
pub(crate) const UPLOAD_PACK: &str = "git-upload-pack";
pub(crate) const RECEIVE_PACK: &str = "git-receive-pack";

impl Session {
    pub fn new(
        url: SourceUrl,
        reference: GitRef,
        (credentials, names): (Credentials, CredentialNames),
        ca_pem: Option<Vec<u8>>,
        budget: Arc<Budget>,
        timeout: Duration,
    ) -> Session {
        Session {
            url,
            reference,
            credentials,
            names,
            ca_pem,
            failure: Mutex::new(None),
            bytes_read: AtomicU64::new(0),
            budget,
            deadline: Instant::now() + timeout,
            timeout,
            service: UPLOAD_PACK,
        }
    }

    /// This session pushes: the transports ask for `git-receive-pack`.
    pub fn pushing(mut self) -> Session {
        self.service = RECEIVE_PACK;
        self
    }

    /// Counts `n` bytes read from the server; past the cache's budget, alone or with the
    /// other fetches under way, fails the fetch.
    pub fn received(&self, n: usize) -> std::io::Result<()> {
        let total = self.bytes_read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let max = self.budget.max_disk_bytes();
        let together = self.budget.receive(n as u64);
        let message = match together {
            Ok(()) => return Ok(()),
            Err(_) if total > max => format!(
                "{}: the server sent more than {max} bytes, the git cache's size limit: raise --git-cache-max-mib, or \
                 fetch a smaller repository",
                self.what(),
            ),
            Err(together) => format!(
                "{}: the fetches under way received {together} bytes together, more than the git cache's size limit \
                 ({max} bytes): this one stops, and is retried; raise --git-cache-max-mib to fetch them at once",
                self.what(),
            ),
        };
        Err(self.fail(FetchFailure::TooLarge, message))
    }

    /// The time left before the deadline; when none is left, fails the fetch.
    pub fn remaining(&self) -> std::io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.timed_out()),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Fails the fetch for its deadline.
    pub fn timed_out(&self) -> std::io::Error {
        self.fail(
            FetchFailure::TimedOut,
            format!(
                "{}: not done within {}: check that the server is reachable and answering, or raise spec.timeout",
                self.what(),
                weaver_project::humanize(self.timeout)
            ),
        )
    }

    /// Records why the transport failed (the first reason wins) and returns it as the I/O
    /// error libgit2 is given.
    pub fn fail(&self, failure: FetchFailure, message: String) -> std::io::Error {
        let mut slot = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let error = slot.get_or_insert(FetchError::new(failure, message));
        std::io::Error::other(error.message.clone())
    }

    pub fn failure(&self) -> Option<FetchError> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `fetching <url> (<ref>)` or `pushing to <url> (<ref>)`, the start of every message.
    pub fn what(&self) -> String {
        match self.service {
            RECEIVE_PACK => format!("pushing to {} ({})", self.url.shown(), self.reference),
            _ => format!("fetching {} ({})", self.url.shown(), self.reference),
        }
    }
}

impl Drop for Session {
    /// What the fetch received is the mirror's now (counted in its size), or gone with it.
    fn drop(&mut self) {
        self.budget.received_done(self.bytes_read.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CacheLimits;

    fn session(budget: &Arc<Budget>) -> Session {
        let url = SourceUrl::parse("https://git.example.com/shop.git").unwrap();
        Session::new(
            url,
            GitRef::Branch("main".into()),
            (Credentials::None, CredentialNames::default()),
            None,
            budget.clone(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn fetches_under_way_together_receive_no_more_than_the_cache_holds() {
        let budget = Budget::new(CacheLimits { max_disk_bytes: 100, max_repositories: 10 });
        let (first, second) = (session(&budget), session(&budget));
        first.received(60).unwrap();
        second.received(30).unwrap();
        let err = second.received(20).unwrap_err().to_string();
        assert!(
            err.contains("the fetches under way received 110 bytes together") && err.contains("100 bytes"),
            "{err}"
        );
        assert_eq!(second.failure().map(|f| f.failure), Some(FetchFailure::TooLarge));
        // Once they end, what they received is the mirrors' (or gone): a next fetch has room.
        drop((first, second));
        let third = session(&budget);
        third.received(100).unwrap();
        let err = third.received(1).unwrap_err().to_string();
        assert!(err.contains("the server sent more than 100 bytes"), "{err}");
    }
}
