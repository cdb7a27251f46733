pub mod diff;
pub mod release;
