//! Renders kept by a long-running reader (`weaver ui`): an environment is loaded, decrypted and
//! rendered again only when something the render reads may have changed.
//!
//! What a render reads is the repository's working tree (environments, charts, values and SOPS
//! files, `charts.lock`) and the age key files; remote charts come from the cache by digest,
//! which `charts.lock` names. So a render is kept with the state of every file of the working
//! tree (`.git` aside) and of every key file the environment's keys could be read from: its
//! path, size, inode, and modification and change times, the latter in nanoseconds (no tool
//! sets a file's change time, so no edit goes unseen, whatever it does to the modification
//! time). Any difference, a file added or removed included, renders again. Checking costs a
//! `stat` of each file; reading them would cost more than many renders.
//!
//! The decrypted values stay where a render keeps them anyway: in this process's memory,
//! registered with its redactor, never on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::judgments::Judgments;
use super::render::{Desired, Offline, Prepared, Quotes, RenderOptions, prepare};
use super::{Context, Progress, phase};
use weaver_core::error::Result;

/// The renders kept, by repository and environment: for one reader, whose keys and redactor
/// stay the same.
#[derive(Default, Clone)]
pub struct Renders {
    /// Shared by the clones: a render on the blocking pool keeps into the same map.
    kept: Arc<Mutex<KeptRenders>>,
}

/// By repository and environment.
type KeptRenders = HashMap<(PathBuf, String), Arc<Kept>>;

/// A render, and what it read and said.
struct Kept {
    state: FilesState,
    /// The key files the environment's keys may be read from, watched with the working tree.
    key_files: Vec<PathBuf>,
    prepared: Arc<Prepared>,
    offline: Desired,
    /// Its warnings, told again with each use: a page shows them each time.
    warnings: Vec<String>,
    /// The releases' plans, health and drift judged with this render, kept while what each
    /// read of the cluster is unchanged: dropped with the render when a file changes.
    judgments: Arc<Judgments>,
}

impl Renders {
    /// The selection of `options` prepared (loaded and decrypted, for a plan against a
    /// cluster) and rendered before the cluster is read, as [`super::plan::plan`] does: the
    /// render kept from an earlier call when no file it read changed since, else a new one,
    /// kept. Only whole environments of the working tree are kept, each with the judgments
    /// made with its render.
    pub fn prepared(
        &self,
        options: &RenderOptions,
        cx: Context<'_>,
    ) -> Result<(Arc<Prepared>, Desired, Option<Arc<Judgments>>)> {
        let selection = &options.selection;
        let whole = selection.releases.is_empty()
            && selection.selectors.is_empty()
            && selection.changed_since.is_none()
            && selection.rev.is_none();
        if !whole {
            let prepared = prepare(options, cx, Quotes::Cluster)?;
            let offline = prepared.render(Offline::BeforeCluster, cx.on)?;
            return Ok((Arc::new(prepared), offline, None));
        }
        let key = (selection.repo.clone(), selection.env.clone());
        let started = Instant::now();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        if let Some(kept) = kept {
            let state = FilesState::of(&selection.repo, &kept.key_files);
            if state == kept.state {
                phase(cx.on, "render (kept: no file changed)", started);
                for warning in &kept.warnings {
                    (cx.on)(Progress::Warning(warning.clone()));
                }
                return Ok((Arc::clone(&kept.prepared), kept.offline.clone(), Some(Arc::clone(&kept.judgments))));
            }
        }
        // The working tree as it is before the render reads it: an edit made meanwhile is
        // seen by the next call.
        let tree = FilesState::of_tree(&selection.repo);
        let warnings = Mutex::new(Vec::new());
        let heard = |progress: Progress<'_>| {
            if let Progress::Warning(warning) = &progress {
                warnings.lock().unwrap_or_else(|e| e.into_inner()).push(warning.clone());
            }
            (cx.on)(progress);
        };
        let told = Context { on: &heard, ..cx };
        let prepared = prepare(options, told, Quotes::Cluster)?;
        // Known once the environment says where its key is (and read by now: an edit of a key
        // file in these few moments would go unseen).
        let key_files = options.keys.files(&selection.repo, prepared.environment().identity_file.as_ref());
        let state = tree.and(&key_files);
        let offline = prepared.render(Offline::BeforeCluster, &heard)?;
        let prepared = Arc::new(prepared);
        let warnings = warnings.into_inner().unwrap_or_else(|e| e.into_inner());
        let judgments = Arc::new(Judgments::default());
        let kept = Kept {
            state,
            key_files,
            prepared: Arc::clone(&prepared),
            offline: offline.clone(),
            warnings,
            judgments: Arc::clone(&judgments),
        };
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::new(kept));
        Ok((prepared, offline, Some(judgments)))
    }
}

/// The state of some files: what changes when any of them is written, created or removed.
#[derive(PartialEq, Eq)]
struct FilesState(Vec<(PathBuf, Option<FileState>)>);

#[derive(PartialEq, Eq)]
struct FileState {
    len: u64,
    inode: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileState {
    fn of(metadata: &std::fs::Metadata) -> FileState {
        use std::os::unix::fs::MetadataExt;
        FileState {
            len: metadata.len(),
            inode: metadata.ino(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

impl FilesState {
    /// Every file and directory under `repo` (but `.git`), then `others`, in a stable order;
    /// what cannot be read is recorded as such (and read again next time).
    fn of(repo: &Path, others: &[PathBuf]) -> FilesState {
        FilesState::of_tree(repo).and(others)
    }

    /// This state followed by that of `others`.
    fn and(mut self, others: &[PathBuf]) -> FilesState {
        for other in others {
            self.0.push((other.clone(), std::fs::metadata(other).ok().as_ref().map(FileState::of)));
        }
        self
    }

    fn of_tree(repo: &Path) -> FilesState {
        let mut files = Vec::new();
        let mut dirs = vec![repo.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                files.push((dir, None));
                continue;
            };
            let mut entries: Vec<std::fs::DirEntry> = entries.filter_map(std::result::Result::ok).collect();
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for entry in entries {
                let path = entry.path();
                if entry.file_name() == ".git" && dir == repo {
                    continue;
                }
                // A link is read through: what it points at is what a render reads.
                let metadata = std::fs::metadata(&path).ok();
                if metadata.as_ref().is_some_and(|m| m.is_dir()) && !entry.file_type().is_ok_and(|t| t.is_symlink()) {
                    dirs.push(path.clone());
                }
                files.push((path, metadata.as_ref().map(FileState::of)));
            }
        }
        FilesState(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Heard, Repo};

    /// The greeting the kept render's ConfigMap holds.
    fn greeting(offline: &Desired) -> &serde_json::Value {
        &offline.rendered.releases[0].manifests[0].object["data"]["greeting"]
    }

    #[test]
    fn a_render_is_kept_until_a_file_of_the_working_tree_changes() {
        let repo = Repo::new();
        let (renders, options, heard) = (Renders::default(), repo.render_options(), Heard::default());
        let (first, offline, judgments) = renders.prepared(&options, heard.cx()).unwrap();
        let (again, _, kept) = renders.prepared(&options, heard.cx()).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "rendered again with no file changed");
        assert!(Arc::ptr_eq(&judgments.unwrap(), &kept.unwrap()));
        assert_eq!(greeting(&offline), "hello");
        repo.greet("hi");
        let (changed, offline, _) = renders.prepared(&options, heard.cx()).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed), "kept after a values file changed");
        assert_eq!(greeting(&offline), "hi");
        // A file added is a change too.
        repo.write("notes.txt", "x");
        assert!(!Arc::ptr_eq(&changed, &renders.prepared(&options, heard.cx()).unwrap().0));
    }

    #[test]
    fn only_whole_environments_are_kept() {
        let repo = Repo::new();
        let (renders, mut options, heard) = (Renders::default(), repo.render_options(), Heard::default());
        options.selection.releases = vec!["web".into()];
        let (first, _, judgments) = renders.prepared(&options, heard.cx()).unwrap();
        assert!(judgments.is_none());
        assert!(!Arc::ptr_eq(&first, &renders.prepared(&options, heard.cx()).unwrap().0));
    }
}
