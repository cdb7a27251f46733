//! Judgments of releases kept between reads of one environment (`weaver ui`'s page views): a
//! release's plan, health or drift is judged again only when something it read changed (its
//! [`Fingerprint`](weaver_plan::release::fingerprint::Fingerprint)), so that a view after a change
//! pays for the releases it touched, not for all of them. They are kept with the render they
//! judged (`renders.rs`), and dropped with it when any file changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use weaver_plan::plan::{KeptPlans, ObjectPlan};
use weaver_plan::release::drift::ReleaseDrift;
use weaver_plan::release::status::ReleaseHealth;

/// The judgments kept for one environment's render.
#[derive(Default)]
pub struct Judgments {
    /// Each release's rendered objects planned, in the order it renders them.
    pub plans: Kept<Vec<ObjectPlan>>,
    pub health: Kept<ReleaseHealth>,
    pub drift: Kept<ReleaseDrift>,
}

/// One kind of judgment, by release name, each with the fingerprint of what it read.
pub struct Kept<T> {
    /// Shared, so that a copy is made outside the lock the threads judging releases share.
    judged: Mutex<HashMap<String, (u64, Arc<T>)>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept { judged: Mutex::new(HashMap::new()) }
    }
}

impl<T: Clone> Kept<T> {
    /// The judgment of `release` kept with `fingerprint`, if one is.
    pub fn get(&self, release: &str, fingerprint: u64) -> Option<T> {
        let kept =
            self.lock().get(release).filter(|(kept, _)| *kept == fingerprint).map(|(_, judged)| Arc::clone(judged));
        kept.map(|judged| T::clone(&judged))
    }

    /// Keeps `judged` for `release`, in place of what was kept.
    pub fn keep(&self, release: &str, fingerprint: u64, judged: T) {
        self.lock().insert(release.to_string(), (fingerprint, Arc::new(judged)));
    }

    /// The judgment of `release` kept with `fingerprint`, else `judge`'s, kept.
    pub fn judged(&self, release: &str, fingerprint: u64, judge: impl FnOnce() -> T) -> T {
        if let Some(judged) = self.get(release, fingerprint) {
            return judged;
        }
        let judged = judge();
        self.keep(release, fingerprint, judged.clone());
        judged
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, Arc<T>)>> {
        self.judged.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeptPlans for Kept<Vec<ObjectPlan>> {
    fn planned(&self, release: &str, fingerprint: u64) -> Option<Vec<ObjectPlan>> {
        self.get(release, fingerprint)
    }

    fn keep_planned(&self, release: &str, fingerprint: u64, planned: Vec<ObjectPlan>) {
        self.keep(release, fingerprint, planned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_judgment_is_kept_while_its_fingerprint_is_the_same() {
        let kept: Kept<String> = Kept::default();
        let mut judged = 0;
        let mut judge = |fingerprint| {
            kept.judged("web", fingerprint, || {
                judged += 1;
                format!("judged {judged}")
            })
        };
        assert_eq!(judge(1), "judged 1");
        assert_eq!(judge(1), "judged 1");
        assert_eq!(judge(2), "judged 2");
        assert_eq!(judge(1), "judged 3", "only the last judgment is kept");
    }
}
