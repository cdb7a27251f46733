//! What weaver's own outbound requests share (chart repositories, git over https,
//! notifications, the API server): an HTTP agent with trust roots, how long and how far apart
//! to try again, and the runtime their async connections run on.

pub mod http;
pub mod retry;
pub mod runtime;
