//! How long, and how far apart, weaver tries again what failed for a reason that may pass:
//! requests to the API server (`cluster::retry`) and notifications (`notify`). Each caller
//! decides what may pass; this is the arithmetic they share.

use std::time::Duration;

use rand::Rng;

/// Retries bounded by time, not by a count, with jittered exponential backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// How long after the first attempt another may still start.
    pub budget: Duration,
    /// The longest wait before the second attempt; it doubles for each later one.
    pub base: Duration,
    /// No wait is longer, not even one a server asks for (`Retry-After`).
    pub cap: Duration,
}

impl RetryPolicy {
    /// Waits of 200 ms doubling to 5 s, for `budget`.
    pub fn within(budget: Duration) -> Self {
        RetryPolicy { budget, base: Duration::from_millis(200), cap: Duration::from_secs(5) }
    }

    /// The longest wait after `failed` attempts (1 or more): `base`, doubled per attempt, capped.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32.checked_shl(failed.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after `failed` attempts: "equal jitter", between half the backoff and all of
    /// it, so that concurrent clients spread out but every one still backs off; `asked` (what
    /// the server asked for, zero when nothing) when longer, up to the cap.
    pub fn delay(&self, failed: u32, asked: Duration) -> Duration {
        let backoff = self.backoff(failed);
        let half = backoff / 2;
        let jittered = half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0));
        jittered.max(asked).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_within_it() {
        let policy = RetryPolicy::within(Duration::from_secs(60));
        let ceilings: Vec<u128> = (1..=8).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(ceilings, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(policy.backoff(u32::MAX), policy.cap, "no overflow");
        for failed in 1..=8 {
            let ceiling = policy.backoff(failed);
            for _ in 0..200 {
                let delay = policy.delay(failed, Duration::ZERO);
                assert!(delay >= ceiling / 2 && delay <= ceiling, "{delay:?} after {failed} failures");
            }
        }
    }

    #[test]
    fn a_wait_asked_for_is_waited_up_to_the_cap() {
        let policy = RetryPolicy::within(Duration::from_secs(60));
        assert_eq!(policy.delay(1, Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(policy.delay(1, Duration::from_secs(3600)), policy.cap);
    }
}
