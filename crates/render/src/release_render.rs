//! What one release's render is given, in this process or in a worker's.

use std::path::Path;

/// A release's templates and the context they are rendered in: what
/// [`Engine::render_release`](crate::engine::Engine::render_release) renders.
#[derive(Clone, Copy)]
pub struct ReleaseRender<'a> {
    /// The release's name, as errors and limits name it.
    pub release: &'a str,
    pub templates: &'a [&'a Path],
    pub context: &'a minijinja::Value,
    /// The part of `context` every release of the chart in this run shares (the environment,
    /// secrets, chart, files, capabilities), and a number no other shared part has: a worker
    /// is sent it once, not with each release.
    pub shared: (u64, &'a minijinja::Value),
}

/// A number for a [`ReleaseRender::shared`] context, unique in this process.
pub fn shared_id() -> u64 {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
