use std::process::ExitCode;

use clap::{CommandFactory, Parser};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    purge_freed_memory_soon();
    // Answers the completion scripts' `COMPLETE=SHELL weaver -- …` requests.
    let completion = clap_complete::CompleteEnv::with_factory(weaver::cli::Cli::command)
        .var(weaver::commands::completions::COMPLETE_VAR)
        .try_complete(std::env::args_os(), std::env::current_dir().ok().as_deref());
    match completion {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(err) => return usage_error(&err),
    }
    match weaver::cli::Cli::try_parse() {
        Ok(cli) => weaver::commands::run(cli),
        Err(err) => usage_error(&err),
    }
}

/// mimalloc gives freed memory back to the system a second after it is freed. A render of
/// hundreds of charts frees and allocates in waves from two threads, and kept 250–285 MB
/// resident where a delay of 10 ms keeps 213–218 MB in the same time (450 real charts,
/// benches/helm.rs; at once: 191–210 MB, with more time in the kernel). `MIMALLOC_PURGE_DELAY`
/// still overrides it.
fn purge_freed_memory_soon() {
    /// `mi_option_purge_delay` in libmimalloc-sys 0.1.49's mimalloc v3 (`mimalloc.h`), which
    /// its Rust bindings leave unnamed.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: called before any other thread starts, as mi_option_set_default requires.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 10) }
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
    fn the_option_set_is_mimallocs_purge_delay() {
        super::purge_freed_memory_soon();
        let mut options = String::new();
        // SAFETY: `collect` receives `options` as its argument, which outlives the call.
        unsafe { mi_options_print_out(collect, &mut options as *mut String as *mut c_void) };
        assert!(options.contains("option 'purge_delay': 10 "), "mimalloc's options:\n{options}");
    }
}
