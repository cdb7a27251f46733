//! Converting other tools' configuration into weaver's environment files. Pure: callers give
//! the text and a view of the files it names, and get back the files to write and what could
//! not be converted.

pub mod flux;
pub mod helmfile;
mod node;
