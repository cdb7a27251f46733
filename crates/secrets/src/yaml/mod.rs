//! YAML reading and writing for secrets files, with comments.

mod read;
mod write;

pub(crate) use read::parse;
pub(crate) use write::emit;
