//! The suite's temporary files on tmpfs. Its tests and the processes they start create and delete
//! files all the time (repositories, charts, git objects, browser profiles); on an ext4 `/tmp`,
//! allocating their inodes was a large part of the suite's system time (perf: ext4's inode
//! bitmap search and its recently-deleted check). In three paired runs on 2 cores, the suite took
//! 119/110/106 s with `/tmp` on ext4 and 106/105/100 s on tmpfs, its system CPU 42-54 s and
//! 33-38 s. So before `main`, while the process has one thread, TMPDIR is pointed at a directory
//! of its own in `/dev/shm` when that is a tmpfs with room and exec rights and the user set no
//! TMPDIR; every test's `tempfile` and every process a test starts inherit it. The directory is
//! removed when the suite exits.

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TEMP_ON_TMPFS: extern "C" fn() = temp_on_tmpfs;

#[cfg(target_os = "linux")]
static TEMP_ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// The most the suite was seen to hold at once is about 250 MB; a smaller tmpfs (a container's
/// 64 MB `/dev/shm`) is left alone.
#[cfg(target_os = "linux")]
const ROOM_NEEDED: u64 = 2 << 30;

#[cfg(target_os = "linux")]
extern "C" fn temp_on_tmpfs() {
    if std::env::var_os("TMPDIR").is_some() {
        return;
    }
    let shm = c"/dev/shm";
    // SAFETY: statfs and statvfs write only into the zeroed structs they are given.
    let (mut kind, mut space): (libc::statfs, libc::statvfs) = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(shm.as_ptr(), &mut kind) } != 0 || unsafe { libc::statvfs(shm.as_ptr(), &mut space) } != 0
    {
        return;
    }
    let room = space.f_bavail.saturating_mul(space.f_frsize);
    if kind.f_type != libc::TMPFS_MAGIC || space.f_flag & libc::ST_NOEXEC != 0 || room < ROOM_NEEDED {
        return;
    }
    let Ok(dir) = tempfile::Builder::new().prefix("weaver-suite-").tempdir_in("/dev/shm") else {
        return;
    };
    let dir = TEMP_ROOT.get_or_init(|| dir.keep());
    // SAFETY: before main, on the process's only thread: nothing reads the environment meanwhile.
    unsafe { std::env::set_var("TMPDIR", dir) };
    // SAFETY: registers a function that takes no arguments, run once as the process exits.
    unsafe { libc::atexit(remove_temp_root) };
}

#[cfg(target_os = "linux")]
extern "C" fn remove_temp_root() {
    if let Some(dir) = TEMP_ROOT.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Where the suite keeps its temporary files: in its own directory on tmpfs when the hook above
/// chose one, as this process and the processes it starts see it; else where the user or the
/// system says, which the test names.
#[test]
fn temporary_files_are_where_the_suite_chose_for_this_process_and_its_children() {
    let child_sees = || {
        let out = std::process::Command::new("sh").args(["-c", "printf %s \"$TMPDIR\""]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    #[cfg(target_os = "linux")]
    if let Some(root) = TEMP_ROOT.get() {
        assert!(root.starts_with("/dev/shm") && root.is_dir(), "{}", root.display());
        assert_eq!(std::env::temp_dir(), *root);
        assert!(tempfile::tempdir().unwrap().path().starts_with(root));
        assert_eq!(child_sees(), root.to_str().unwrap());
        return;
    }
    let tmpdir = std::env::var("TMPDIR").unwrap_or_default();
    assert_eq!(child_sees(), tmpdir);
    eprintln!(
        "temporary files in {}: TMPDIR was set, or /dev/shm is no tmpfs with room and exec rights",
        std::env::temp_dir().display()
    );
}
