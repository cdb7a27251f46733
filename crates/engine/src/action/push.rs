//! `weaver push artifact`: the weaver repository's files at a commit, packed as an OCI artifact
//! in Flux's format, which an EnvironmentSync's `spec.source.oci` renders and applies as it
//! would a git checkout of that commit.

use std::path::PathBuf;

use serde::Serialize;

use weaver_core::error::Result;
use weaver_git::GitRepo;
use weaver_source::charts::http::Machine;
use weaver_source::charts::oci::{self, Artifact};

/// What to pack and where to push it.
#[derive(Debug, Clone)]
pub struct PushArtifactOptions {
    /// The weaver repository (`--repo`): its directory of the commit's tree is packed.
    pub repo: PathBuf,
    /// The commit (`--rev`); HEAD when None.
    pub rev: Option<String>,
    pub artifact: Artifact,
}

/// An artifact pushed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedArtifact {
    pub schema_version: u32,
    /// `REGISTRY/REPOSITORY:TAG`.
    pub artifact: String,
    /// The manifest's digest, `sha256:…`: what the tag names now.
    pub digest: String,
    /// The commit packed.
    pub commit: String,
    pub files: usize,
}

/// Packs the repository's tracked files at the commit (never untracked files, nor `.git`: a
/// checkout of the commit gives the same) and pushes them to the artifact's tag, with the
/// registry credentials `hydrate --oci` uses.
pub fn push_artifact(options: &PushArtifactOptions) -> Result<PushedArtifact> {
    let git = GitRepo::open(&options.repo)?;
    let revision = match &options.rev {
        Some(rev) => git.resolve(rev, "--rev")?,
        None => git.resolve("HEAD", "HEAD")?,
    };
    let files = git.files(&revision)?;
    let provenance = weaver_git::Provenance { commit: revision.commit.to_string(), dirty: false };
    let described = git.artifact_source(&provenance)?;
    let built = oci::build_repository_artifact(&files, super::hydrate::source_annotations(Some(&described)));
    let mut connection = options.artifact.connect(&Machine::load(|key| std::env::var(key).ok())?)?;
    let digest = oci::push_artifact(&mut connection, &options.artifact, &built)?;
    Ok(PushedArtifact {
        schema_version: 1,
        artifact: options.artifact.to_string(),
        digest,
        commit: provenance.commit,
        files: files.len(),
    })
}
