//! How long, and how far apart, weaver tries again what failed for a reason that may pass:
//! requests to the API server (`cluster::retry`), notifications (`notify`), registries
//! (`source::images`) and failed reconciles (`controllers::Backoff`). Each caller decides what
//! may pass; this is the arithmetic they share, and the one reader of `Retry-After`.

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
        exponential(self.base, failed, self.cap)
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

/// Exponential backoff: `base` after the first failure (`failed` 1), doubled for each later
/// one, never more than `cap`.
pub fn exponential(base: Duration, failed: u32, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(failed.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

/// The wait a `Retry-After` header asks for (RFC 9110): seconds, or an HTTP date, the time
/// until it from `now` (none when past). `None` when it is neither.
pub fn retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let until = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(now.duration_until(until).try_into().unwrap_or(Duration::ZERO))
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

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Sat, 28 Nov 2026 12:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now), Some(Duration::ZERO), "a date past");
        for bad in ["", "-1", "soon", "1.5"] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn exponential_doubles_from_the_first_failure() {
        let waits: Vec<u64> =
            (1..=7).map(|n| exponential(Duration::from_secs(2), n, Duration::from_secs(30)).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
    }
}
