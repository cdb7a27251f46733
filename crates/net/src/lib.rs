//! What weaver's own outbound requests share (chart repositories, git over https,
//! notifications, the API server): an HTTP agent with trust roots, and how long and how far
//! apart to try again.

pub mod http;
pub mod retry;
