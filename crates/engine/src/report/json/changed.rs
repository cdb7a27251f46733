//! `weaver changed -o json`.

use std::path::PathBuf;

use crate::changed::{ChangeSet, Comparison, ReleaseStatus};
use serde::Serialize;
use weaver_git::Revision;

/// `weaver changed -o json`.
#[derive(Debug, Serialize)]
pub struct ChangedReport<'a> {
    pub base: ChangedBase<'a>,
    pub head: ChangedHead<'a>,
    /// The environments of `releases`, sorted.
    pub environments: Vec<&'a str>,
    pub releases: Vec<ChangedRelease<'a>>,
    pub unattributed: &'a [PathBuf],
}

#[derive(Debug, Serialize)]
pub struct ChangedBase<'a> {
    pub rev: &'a str,
    pub commit: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedHead<'a> {
    /// Null for the working tree.
    pub rev: Option<&'a str>,
    /// Null for the working tree of a repository with no commit yet.
    pub commit: Option<String>,
    pub working_tree: bool,
}

#[derive(Debug, Serialize)]
pub struct ChangedRelease<'a> {
    pub environment: &'a str,
    pub release: &'a str,
    pub status: ReleaseStatus,
    pub paths: &'a [PathBuf],
}

impl<'a> ChangedReport<'a> {
    pub fn new(comparison: &'a Comparison, changes: &'a ChangeSet) -> ChangedReport<'a> {
        let commit = |r: &Revision| r.commit.to_string();
        let head = match &comparison.head {
            Some(head) => ChangedHead { rev: Some(&head.spec), commit: Some(commit(head)), working_tree: false },
            None => ChangedHead {
                rev: None,
                commit: comparison.working_tree_commit.as_ref().map(commit),
                working_tree: true,
            },
        };
        ChangedReport {
            base: ChangedBase { rev: &comparison.base.spec, commit: commit(&comparison.base) },
            head,
            environments: changes.environments(),
            releases: changes
                .releases
                .iter()
                .map(|r| ChangedRelease {
                    environment: &r.environment,
                    release: &r.release,
                    status: r.status,
                    paths: &r.paths,
                })
                .collect(),
            unattributed: &changes.unattributed,
        }
    }
}
