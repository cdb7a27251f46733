use std::process::ExitCode;

use clap::{CommandFactory, Parser};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tune_memory();
    // Answers the completion scripts' `COMPLETE=SHELL weaver -- …` requests.
    let completion = clap_complete::CompleteEnv::with_factory(weaver_cli::cli::Cli::command)
        .var(weaver_cli::commands::completions::COMPLETE_VAR)
        .try_complete(std::env::args_os(), std::env::current_dir().ok().as_deref());
    match completion {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(err) => return usage_error(&err),
    }
    let code = match weaver_cli::cli::Cli::try_parse() {
        Ok(cli) => weaver_cli::commands::run(cli),
        Err(err) => usage_error(&err),
    };
    exit_now(code)
}

/// Ends the process with `code` once stdout is flushed, without the C runtime's exit handlers:
/// mimalloc's would give its memory back page range by page range and the loader's would
/// finalize every library, work the kernel's own teardown makes moot (4 % of the CPU of
/// rendering a one-object chart). Everything weaver cleans up (temporary files, child
/// processes, the async runtime) is done by the time a command returns.
fn exit_now(code: ExitCode) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // ExitCode keeps its number to itself; weaver's are 0, 1 and 2.
    let number = (0..=u8::MAX).find(|&n| code == ExitCode::from(n)).unwrap_or(1);
    // SAFETY: _exit ends the process; no Rust code runs after it.
    unsafe { libc::_exit(number.into()) }
}

/// How mimalloc takes memory from the system and gives it back; `MIMALLOC_PURGE_DELAY` and
/// `MIMALLOC_ALLOW_THP` still override it. Called before any other thread starts, as
/// mimalloc's option setters require.
fn tune_memory() {
    // Freed memory goes back a second after it is freed by default. A render of hundreds of
    // charts frees and allocates in waves from two threads, and kept 250–306 MB resident where
    // 100 ms keeps 224–238 MB in the same time (450 real charts, benches/helm.rs). Shorter costs
    // the cluster commands kernel time faulting pages in again (10 ms: a diff of 10
    // environments, 7,500 objects, 20 % slower).
    set_default(MI_OPTION_PURGE_DELAY, 100);
    // Transparent huge pages: the kernel zeroes 2 MB at each first touch of a page of a
    // mimalloc arena, most of it never used. Without them a diff of those 10 environments took
    // 0.76 s and 207 MB instead of 0.86 s and 311 MB, and the render above 30 MB less. mimalloc
    // is built never to ask for them (`no_thp`, Cargo.toml), which is all a kernel whose THP
    // setting is `madvise` needs; where it is `always`, the process's own switch turns them off
    // for what mimalloc reserves from here on.
    set_default(MI_OPTION_ALLOW_THP, 0);
    // SAFETY: mi_option_is_enabled reads an option; prctl with these arguments only sets a flag.
    unsafe {
        if !libmimalloc_sys::mi_option_is_enabled(MI_OPTION_ALLOW_THP) {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// `mi_option_purge_delay` and `mi_option_allow_thp` in libmimalloc-sys 0.1.49's mimalloc v3
/// (`mimalloc.h`), which its Rust bindings leave unnamed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

fn set_default(option: libmimalloc_sys::mi_option_t, value: std::ffi::c_long) {
    // SAFETY: only called from `tune_memory`, before any other thread starts.
    unsafe { libmimalloc_sys::mi_option_set_default(option, value) }
}

fn usage_error(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    // Exit code 2 means "changes found" in weaver, so usage errors exit 1 like every error.
    if err.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, c_char, c_void};

    unsafe extern "C" {
        /// mimalloc's list of its options, by name, each with its value.
        fn mi_options_print_out(out: extern "C" fn(*const c_char, *mut c_void), arg: *mut c_void);
    }

    extern "C" fn collect(message: *const c_char, into: *mut c_void) {
        // SAFETY: mimalloc passes a NUL-terminated message and the `arg` given below.
        let (message, into) = unsafe { (CStr::from_ptr(message), &mut *(into as *mut String)) };
        into.push_str(&message.to_string_lossy());
    }

    #[test]
    fn the_options_set_are_mimallocs_purge_delay_and_huge_pages() {
        super::tune_memory();
        let mut options = String::new();
        // SAFETY: `collect` receives `options` as its argument, which outlives the call.
        unsafe { mi_options_print_out(collect, &mut options as *mut String as *mut c_void) };
        assert!(options.contains("option 'purge_delay': 100 "), "mimalloc's options:\n{options}");
        assert!(options.contains("option 'allow_thp': 0 "), "mimalloc's options:\n{options}");
        // SAFETY: PR_GET_THP_DISABLE only reads the process's flag.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1, "huge pages are still allowed");
    }
}
