//! What one release's render is given, in this process or in a worker's.

use std::path::Path;

/// A release's templates and the context they are rendered in: what
/// [`Engine::render_releases`](crate::engine::Engine::render_releases) renders.
#[derive(Clone, Copy)]
pub struct ReleaseRender<'a> {
    /// The release's name, as errors and limits name it.
    pub release: &'a str,
    pub templates: &'a [&'a Path],
    /// The release's own part of the context (its values, the release).
    pub context: &'a minijinja::Value,
    /// The rest of the context, which every release of the chart in this run shares (the
    /// environment, secrets, chart, files, capabilities), and a number no other shared part
    /// has: a worker is sent it once, not with each release.
    pub shared: (u64, &'a minijinja::Value),
}

impl ReleaseRender<'_> {
    /// The whole context the templates see: the release's own part over the shared one (a
    /// worker makes it the same way).
    pub(crate) fn whole_context(own: minijinja::Value, shared: minijinja::Value) -> minijinja::Value {
        minijinja::context! { ..own, ..shared }
    }
}

/// A number for a [`ReleaseRender::shared`] context, unique in this process.
pub fn shared_id() -> u64 {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
