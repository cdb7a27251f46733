//! The one scheduler of work ordered by `needs`: a fleet's environments (`action::fleet`, each
//! on a thread of its own), an apply's releases (`apply`, futures) and an EnvironmentSync's
//! environments (the controller, one at a time). Each node starts once every node it waits for
//! ended and succeeded, up to a bound at once; one whose blocker did not succeed is not run, and
//! neither is any once the caller holds the run (a failure with `--fail-fast`, an interrupt).
//! What became of each is told as it ends, so progress shows skips when they happen.
//!
//! Runtime-agnostic: the nodes are futures polled together (`FuturesUnordered`); a caller with
//! blocking work hands in futures that wait for its threads.

use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

/// Why a node was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    /// Node `by`, which it waits for, did not succeed: `what` became of it (as the caller's
    /// `failure` says: `failed`, `was skipped`, …).
    Blocked { by: usize, what: &'static str },
    /// The caller's `hold` stopped the run from starting anything more: why.
    Held(String),
}

/// What a schedule did: each node's result, by node, and the order they were started or not
/// run in.
pub struct Ran<T> {
    pub results: Vec<T>,
    pub order: Vec<usize>,
}

/// The nodes and how to run them. `blockers[i]` are the nodes node `i` waits for; at most
/// `parallel` run at once (at least one).
pub struct Schedule<'a> {
    pub blockers: &'a [Vec<usize>],
    pub parallel: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Pending,
    Running,
    /// Ended (run or not); what became of it if it did not succeed.
    Ended(Option<&'static str>),
}

impl Schedule<'_> {
    /// Runs the nodes: `start(i)` runs node `i`; `not_run(i, why)` is the result of one that is
    /// not run; `failure(result)` says whether (and how) a node did not succeed, which holds
    /// back those waiting for it; `hold(whether any did not succeed)`, asked before each node
    /// starts, stops the run from starting more once it gives a reason; `ended(i, result)` is
    /// told of each node as it ends. Nodes are looked at in their order: of those ready, the
    /// first start. A node left waiting in a cycle of `needs` is not run.
    pub async fn run<T, F>(
        &self,
        hold: impl Fn(bool) -> Option<String>,
        start: impl Fn(usize) -> F,
        not_run: impl Fn(usize, NotRun) -> T,
        failure: impl Fn(&T) -> Option<&'static str>,
        mut ended: impl FnMut(usize, &T),
    ) -> Ran<T>
    where
        F: Future<Output = T>,
    {
        let count = self.blockers.len();
        let mut slots = vec![Slot::Pending; count];
        let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
        let mut order = Vec::with_capacity(count);
        let mut running = FuturesUnordered::new();
        let mut any_failed = false;
        let mut end = |i: usize, result: T, slots: &mut Vec<Slot>, any_failed: &mut bool| {
            let failed = failure(&result);
            *any_failed |= failed.is_some();
            slots[i] = Slot::Ended(failed);
            ended(i, &result);
            results[i] = Some(result);
        };
        loop {
            'nodes: for i in 0..count {
                if slots[i] != Slot::Pending {
                    continue;
                }
                if let Some(reason) = hold(any_failed) {
                    order.push(i);
                    end(i, not_run(i, NotRun::Held(reason)), &mut slots, &mut any_failed);
                    continue;
                }
                for &by in &self.blockers[i] {
                    match slots[by] {
                        Slot::Ended(None) => {}
                        Slot::Pending | Slot::Running => continue 'nodes,
                        Slot::Ended(Some(what)) => {
                            order.push(i);
                            end(i, not_run(i, NotRun::Blocked { by, what }), &mut slots, &mut any_failed);
                            continue 'nodes;
                        }
                    }
                }
                if running.len() < self.parallel.max(1) {
                    slots[i] = Slot::Running;
                    order.push(i);
                    let started = start(i);
                    running.push(async move { (i, started.await) });
                }
            }
            match running.next().await {
                Some((i, result)) => end(i, result, &mut slots, &mut any_failed),
                None => break,
            }
        }
        // Nothing runs and nothing can start: what is left waits in a cycle.
        for i in 0..count {
            if slots[i] == Slot::Pending {
                order.push(i);
                let cycle = NotRun::Held("it waits, through its needs, for itself".to_string());
                end(i, not_run(i, cycle), &mut slots, &mut any_failed);
            }
        }
        let results = results.into_iter().map(|r| r.expect("every node ended")).collect();
        Ran { results, order }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Runs `blockers` where `fails` fail, 2 at once, each finishing in the order it started;
    /// returns what ran (in order) and how each ended.
    fn scheduled(blockers: &[Vec<usize>], fails: &[usize], fail_fast: bool) -> (Vec<usize>, Vec<String>) {
        let ran = RefCell::new(Vec::new());
        let hold = |failed: bool| (fail_fast && failed).then(|| "held".to_string());
        let schedule = Schedule { blockers, parallel: 2 };
        let done = futures::executor::block_on(schedule.run(
            hold,
            |i| {
                ran.borrow_mut().push(i);
                std::future::ready(if fails.contains(&i) { "ran false".to_string() } else { "ran true".to_string() })
            },
            |i, why| match why {
                NotRun::Blocked { by, what } => format!("skipped: {i} waits for {by}, which {what}"),
                NotRun::Held(why) => format!("not started: {why}"),
            },
            |result| match result.as_str() {
                "ran true" => None,
                "ran false" => Some("failed"),
                skipped if skipped.starts_with("skipped") => Some("was skipped"),
                _ => Some("was not started"),
            },
            |_, _| {},
        ));
        (ran.into_inner(), done.results)
    }

    #[test]
    fn each_runs_after_its_blockers_and_what_waits_for_a_failure_is_skipped() {
        // 2 waits for 1, 3 for 0, 4 for 2 (and so, through it, for 1).
        let blockers = [vec![], vec![], vec![1], vec![0], vec![2]];
        let (ran, ended) = scheduled(&blockers, &[1], false);
        assert_eq!(
            ended,
            [
                "ran true",
                "ran false",
                "skipped: 2 waits for 1, which failed",
                "ran true",
                "skipped: 4 waits for 2, which was skipped"
            ]
        );
        let at = |i| ran.iter().position(|&r| r == i).unwrap();
        assert!(at(0) < at(3), "{ran:?}");
        assert_eq!(ran.len(), 3);
        // Held once one failed: with 0 failing first, nothing after it starts.
        let (ran, ended) = scheduled(&[vec![], vec![0], vec![1]], &[0], true);
        assert_eq!(ran, [0]);
        assert_eq!(ended, ["ran false", "not started: held", "not started: held"]);
        assert_eq!(scheduled(&[], &[], false), (vec![], vec![]));
        // A cycle is not run, and does not hang the run.
        let (ran, ended) = scheduled(&[vec![1], vec![0], vec![]], &[], false);
        assert_eq!(ran, [2]);
        assert_eq!(ended[..2], ["not started: it waits, through its needs, for itself"; 2]);
    }

    /// No more than `parallel` run at once, and the next starts as soon as one ends; results
    /// and `ended` come as the nodes end, the order says when each started.
    #[test]
    fn at_most_parallel_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let told = RefCell::new(Vec::new());
        // Paused time: the sleeps end in their deadlines' order however loaded the machine is.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let blockers = vec![Vec::new(); 6];
        let schedule = Schedule { blockers: &blockers, parallel: 3 };
        let done = runtime.block_on(schedule.run(
            |_| None,
            |i| {
                let (now, most) = (&now, &most);
                async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20 * (6 - i as u64))).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    i * 10
                }
            },
            |_, _| unreachable!("nothing is held back"),
            |_| None,
            |i, result| told.borrow_mut().push((i, *result)),
        ));
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(done.results, [0, 10, 20, 30, 40, 50]);
        assert_eq!(done.order, [0, 1, 2, 3, 4, 5]);
        // 2 (shortest of the first three) ends first, then 3 starts in its place.
        assert_eq!(told.borrow()[0], (2, 20));
        assert_eq!(told.borrow().len(), 6);
    }
}
