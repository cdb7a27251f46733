//! Plans and what weaver knows of its releases: `diff` (the three-way diff, pure), `plan` (what an
//! apply would do, built of the diff and the releases' records), `release` (records, drift, health,
//! adoption, fingerprints). `plan` imports both others; `release` imports `diff`; `diff` neither.

pub mod diff;
pub mod plan;
pub mod release;
