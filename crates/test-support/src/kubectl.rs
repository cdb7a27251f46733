//! kubectl as the tests run it.

use std::ffi::OsStr;
use std::process::Command;

/// `kubectl` without Go's garbage collector: the tests' kubectl commands are short, on a few
/// objects, and the collector was over a quarter of a `kubectl patch --local`'s CPU (53 to 38 ms
/// a run, most of the rest kubectl's start-up). The helm that `kubectl kustomize --enable-helm`
/// runs inherits it.
pub fn command(kubectl: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(kubectl);
    command.env("GOGC", "off");
    command
}
