//! Saying that a test is skipped, in a way the test output always shows.
//!
//! libtest captures what the `print!`/`eprint!` macros write and hides it for passing tests,
//! so a skipped test would look like a passing one. These lines go straight to file
//! descriptor 2.

use std::io::Write;

/// Writes `skipped <test>: <reason>` to the real stderr, shown whatever libtest captures.
pub fn say_skipped(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
}

/// Interop tests skip when a tool is missing, unless CI demands them with
/// WEAVER_REQUIRE_INTEROP=1, where a missing tool fails the test. `reason` says what is
/// missing; returns whether the test can run.
#[track_caller]
pub fn interop_or_skip(reason: Option<&str>) -> bool {
    let Some(reason) = reason else { return true };
    if std::env::var("WEAVER_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{reason}, and WEAVER_REQUIRE_INTEROP=1 requires this test");
    }
    say_skipped(&format!("{reason} (WEAVER_REQUIRE_INTEROP=1 makes this a failure)"));
    false
}
