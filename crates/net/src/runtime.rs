//! The process's runtime for async work started from synchronous code: the commands' actions
//! (`action::block_on`), each environment of a fleet, `weaver ui`'s views, the connections of
//! the clients a fleet shares (`cluster`'s servers) and git's ssh connections, whose callbacks
//! are synchronous. Built once, on first use: its timers, connections and blocking pool are
//! shared by every caller, and each caller's future is driven on the caller's own thread, so a
//! connection opened for one environment outlives it for the next. (The operator runs on a
//! runtime of its own, which it shuts down, waiting for its work, when it stops.)

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The runtime, or why its threads could not be started.
pub fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("weaver-async")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    built.as_ref().map_err(Clone::clone)
}

/// Runs `future` to completion on the calling thread, on [`runtime`]. Not from inside async
/// code (a runtime's worker), where waiting would block the worker: tokio refuses it.
///
/// # Panics
/// When the runtime's threads cannot be started (the system refuses threads).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().unwrap_or_else(|err| panic!("cannot start weaver's async runtime: {err}")).block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task one caller spawns goes on after that caller's future ended: the next caller finds
    /// it running (as a shared client's connection does between a fleet's environments).
    #[test]
    fn work_spawned_by_one_caller_outlives_it() {
        let (sent, mut received) = tokio::sync::mpsc::channel::<u32>(1);
        block_on(async move {
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                sent.send(7).await.unwrap();
            });
        });
        let heard = std::thread::spawn(move || block_on(async move { received.recv().await })).join().unwrap();
        assert_eq!(heard, Some(7));
    }
}
