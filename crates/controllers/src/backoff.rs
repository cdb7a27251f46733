//! Retries of failed reconciles, as controller-rs backs off: each object's first retry after
//! `first`, doubled for each further attempt up to `max`, started afresh once one succeeds.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

pub struct Backoff<K> {
    first: Duration,
    max: Duration,
    attempts: Mutex<HashMap<K, u32>>,
}

impl<K: Hash + Eq> Backoff<K> {
    pub fn new(first: Duration, max: Duration) -> Backoff<K> {
        Backoff { first, max, attempts: Mutex::new(HashMap::new()) }
    }

    /// How long until `key`'s next attempt, counting this failure.
    pub fn failed(&self, key: K) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let attempt = attempts.entry(key).or_insert(0);
        *attempt = attempt.saturating_add(1);
        weaver_net::retry::exponential(self.first, *attempt, self.max)
    }

    /// `key` succeeded (or is gone): its next failure starts the back-off afresh.
    pub fn settled(&self, key: &K) {
        self.attempts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_the_limit_and_start_afresh_once_settled() {
        let backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(30));
        let waits: Vec<u64> = (0..6).map(|_| backoff.failed("a").as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff.failed("b"), Duration::from_secs(2), "each object counts its own");
        backoff.settled(&"a");
        assert_eq!(backoff.failed("a"), Duration::from_secs(2));
    }
}
