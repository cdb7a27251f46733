//! The crate's integration tests, one binary: each file below was a binary of its own, and
//! each linked and ran alone, one after another, where together they share the build and the cores.

mod certificates;
mod common;
mod helm_interop;
mod nesting;
mod no_panics;
mod table;
