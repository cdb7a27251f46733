//! Tests of `weaver_secrets`: conformance vectors, round trips, tampering, identities,
//! creation rules, interop with the age CLI, edit sessions and redaction.

mod common;
mod edit;
mod errors;
mod identities;
mod interop;
mod redact;
mod roundtrip;
mod rules;
mod vectors;
