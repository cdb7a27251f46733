//! Copying fixture directories; also used by the benches (benches/support).

use std::path::Path;

pub fn copy_dir(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_symlink() {
            // As a link (a corpus may hold dangling ones).
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), target).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The SHA-256 of every file under `dir` (`.git`'s left out), by its path from `dir`: two
/// snapshots are equal when no byte of any file changed, and none was added or removed.
pub fn digests(dir: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let mut out = std::collections::BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(at) = dirs.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                if entry.file_name() != ".git" {
                    dirs.push(path);
                }
            } else {
                let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
                out.insert(path.strip_prefix(dir).unwrap().display().to_string(), digest);
            }
        }
    }
    out
}
