//! Git history for tests and benchmarks, built with git2 (no `git` binary needed).

use std::path::Path;

use git2::{IndexAddOption, Oid, Repository, Signature, Time};

pub fn init(dir: &Path) -> Repository {
    Repository::init(dir).expect("git init")
}

/// Stages every change of the working tree (additions, edits, deletions; ignored files stay
/// out) and commits it on HEAD, with a fixed author and time so runs are reproducible.
pub fn commit_all(repo: &Repository, message: &str) -> Oid {
    let mut index = repo.index().unwrap();
    index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let author = Signature::new("weaver tests", "tests@weaver.invalid", &Time::new(1_700_000_000, 0)).unwrap();
    let parent = repo.head().ok().map(|head| head.peel_to_commit().unwrap());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &author, &author, message, &tree, &parents).unwrap()
}

/// Makes a served repository take pushes to its checked-out branch into its working tree
/// (`receive.denyCurrentBranch=updateInstead`), where a test then commits on top of them.
pub fn follow_pushes(repo: &Repository) {
    repo.config().and_then(|mut config| config.set_str("receive.denyCurrentBranch", "updateInstead")).unwrap();
}
