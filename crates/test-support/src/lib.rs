//! What several crates' tests share (tests only): saying that a test is skipped (`skip`), and the
//! case tables of Go template functions checked against their output and a real `helm template`
//! (`cases`).

pub mod cases;
pub mod skip;
