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
}
