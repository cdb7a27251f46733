//! helm as the tests run it.

use std::path::Path;
use std::process::Command;

/// `helm` with its configuration, cache and data under `home` (none of the machine's), and
/// without Go's garbage collector: the tests' helm commands are short, on small charts, and the
/// collector was a third of a `helm template`'s CPU (53 to 36 ms a render, most of the rest
/// helm's start-up).
pub fn command(helm: &Path, home: &Path) -> Command {
    let mut command = Command::new(helm);
    command
        .env("GOGC", "off")
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    command
}
