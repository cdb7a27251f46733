//! What several crates' tests share (tests only): saying that a test is skipped (`skip`), the
//! case tables of Go template functions checked against their output and a real `helm template`
//! (`cases`), and a loopback HTTP server answering with a handler (`http_server`).

pub mod cases;
pub mod http_server;
pub mod skip;
