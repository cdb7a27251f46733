//! The controller's OCI artifacts of weaver repositories (an EnvironmentSync's
//! `spec.source.oci`, as `weaver push artifact` makes them): the tag resolved to its manifest's
//! digest on every pull, with the EnvironmentSync's credentials, and the layer unpacked once per
//! digest into `<dir>/<hex>`, within the disk budget of the git mirrors and chart archives.
//!
//! The manifest is asked for each time, a digest reference too: a cached directory is given
//! only to a reconcile whose credentials the registry just let read that manifest, so knowing a
//! digest reads nothing. With keys, that manifest's digest must carry a cosign signature one of
//! them holds for, checked at every pull before the layer is looked for in the cache or
//! downloaded: an unpacked directory lets no unsigned digest through. Nothing of the layer is
//! read as YAML before it is whole: its size within the budget, its digest checked, every entry
//! a regular file or a directory inside the tree, within the bounds on files and bytes, then
//! the directory is put in place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::Fetched;
use crate::budget::{Budget, DISCARDED, Flights, Kind, Lease, lock};
use crate::charts::http::Machine;
use crate::charts::oci::{self, Artifact, Unpacked};
use weaver_core::error::{Error, Result};
use weaver_project::chart::is_sha256_digest;
use weaver_verify::Signer;
use weaver_verify::cosign::{CosignKeys, is_cosign_tag};

/// Most files one artifact may unpack to.
pub const MAX_FILES: usize = 100_000;

/// Why a pull failed, as a condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// The registry could not be reached, refused the credentials, or answered an error.
    Failed,
    /// The registry has no such tag or digest.
    NotFound,
    /// The layer is over the bound on bytes or files.
    TooLarge,
    /// Not a weaver repository's artifact, or a tar with an entry that is not a plain file or
    /// directory inside it.
    Invalid,
    /// The manifest carries no cosign signature a trusted key holds for.
    Unverified,
}

/// What of an artifact's repository a pull takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its tag or digest; with `semver`, its registry and repository alone (the tag is the
    /// range's choice, made at each pull).
    pub artifact: Artifact,
    /// Flux's `ref.semver`: the highest of the repository's tags in this range.
    pub semver: Option<String>,
}

/// `registry/repository:tag`, or `registry/repository (semver RANGE)`.
impl std::fmt::Display for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.semver {
            None => self.artifact.fmt(f),
            Some(range) => write!(f, "{}/{} (semver `{range}`)", self.artifact.registry, self.artifact.repository),
        }
    }
}

/// An artifact pulled: its files, the tag it was taken at (none for a digest), and with keys,
/// who signed it.
pub struct Pulled {
    pub fetched: Fetched,
    pub tag: Option<String>,
    pub signed_by: Option<Signer>,
}

/// A failed pull: why, and what to tell.
#[derive(Debug, Clone)]
pub struct PullError {
    pub failure: PullFailure,
    pub message: String,
}

impl PullError {
    fn new(failure: PullFailure, err: impl std::fmt::Display) -> PullError {
        PullError { failure, message: err.to_string() }
    }
}

/// The unpacked artifacts of one controller process. `Send + Sync`: share it with an `Arc`.
pub struct ArtifactCache {
    dir: PathBuf,
    budget: Arc<Budget>,
    flights: Flights<String, std::result::Result<Arc<Lease>, PullError>>,
    /// `registry/repository@digest keys` → who signed it, once a signature held: a digest's
    /// content never changes, nor does a signature that held over it.
    signed: Mutex<HashMap<String, Signer>>,
}

impl ArtifactCache {
    /// The cache in `dir` (created if missing), within `budget`. What an earlier process left
    /// there is removed: a directory is trusted only as this process unpacked it.
    pub fn new(dir: PathBuf, budget: Arc<Budget>) -> Result<ArtifactCache> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("empty the artifact cache directory", &dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the artifact cache directory", &dir, e))?;
        Ok(ArtifactCache { dir, budget, flights: Flights::new(), signed: Mutex::default() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The weaver repository `wanted` names now, pulled with `machine`'s credentials and, with
    /// `keys`, only when one of them signed its manifest; unpacked, leased while the
    /// [`Fetched`] lives, whose `commit` is the manifest's digest.
    pub fn pull(
        &self,
        wanted: &Wanted,
        keys: Option<&CosignKeys>,
        machine: &Machine,
    ) -> std::result::Result<Pulled, PullError> {
        let started = Instant::now();
        let failed = |err: Error| PullError::new(PullFailure::Failed, err);
        let mut connection = wanted.artifact.connect(machine).map_err(failed)?;
        let artifact = &match &wanted.semver {
            None => wanted.artifact.clone(),
            Some(range) => Artifact { tag: highest_tag(&mut connection, wanted, range)?, ..wanted.artifact.clone() },
        };
        let layer = oci::repository_layer(&mut connection, artifact)
            .map_err(|err| PullError::new(PullFailure::Invalid, err))?
            .ok_or_else(|| {
                PullError::new(PullFailure::NotFound, format!("{artifact}: the registry has no such tag"))
            })?;
        // Before anything of the layer is looked for, cached or not.
        let signed_by = match keys {
            Some(keys) => Some(self.signer(&mut connection, artifact, &layer.manifest, keys)?),
            None => None,
        };
        let max_bytes = self.budget.max_disk_bytes().min(oci::MAX_UNPACKED);
        if layer.size > max_bytes {
            return Err(PullError::new(
                PullFailure::TooLarge,
                format!(
                    "{artifact} ({}) is refused: its layer is {} bytes, over the {max_bytes} bytes the controller's cache may hold for it (--cache-max-mib)",
                    layer.digest, layer.size
                ),
            ));
        }
        let hex = layer.digest.trim_start_matches("sha256:").to_string();
        let path = self.dir.join(&hex);
        let mut transferred = 0;
        // Put in place whole (a rename) or not at all: an entry without its directory is one
        // being written, or whose pull failed.
        let lease = match self.budget.lease_held(&path).filter(|_| path.is_dir()) {
            Some(lease) => lease,
            None => {
                let pulled = self.flights.run(
                    layer.digest.clone(),
                    || {
                        let writing = self.budget.writing(&path, Kind::Artifact);
                        let _held = lock(&writing);
                        let data =
                            oci::repository_blob(&mut connection, artifact, &layer, max_bytes).map_err(failed)?;
                        transferred = data.len() as u64;
                        let partial = self.dir.join(format!("{hex}.partial{DISCARDED}"));
                        let _ = std::fs::remove_dir_all(&partial);
                        let bounds = oci::Bounds { max_bytes, max_files: MAX_FILES };
                        let size = match oci::unpack_into(&data, &partial, bounds) {
                            Ok(size) => size,
                            Err(unpacked) => {
                                let _ = std::fs::remove_dir_all(&partial);
                                let (failure, why) = match unpacked {
                                    Unpacked::TooLarge(why) => (PullFailure::TooLarge, why),
                                    Unpacked::Invalid(why) => (PullFailure::Invalid, why),
                                };
                                return Err(PullError::new(
                                    failure,
                                    format!("{artifact} ({}) is refused: {why}", layer.digest),
                                ));
                            }
                        };
                        let _ = std::fs::remove_dir_all(&path);
                        std::fs::rename(&partial, &path)
                            .map_err(|e| failed(Error::io("put the unpacked artifact in place", &path, e)))?;
                        Ok(self.budget.lease(&path, Kind::Artifact, Some(size)))
                    },
                    || Err(PullError::new(PullFailure::Failed, format!("the pull of {artifact} panicked"))),
                );
                if pulled.is_ok() {
                    self.budget.evict();
                }
                pulled?
            }
        };
        let fetched = Fetched {
            commit: layer.manifest,
            repository: path,
            reference: artifact.to_string(),
            transferred: transferred > 0,
            bytes_received: transferred,
            duration: started.elapsed(),
            unpacked: true,
            lease,
        };
        let tag = (!is_sha256_digest(&artifact.tag)).then(|| artifact.tag.clone());
        Ok(Pulled { fetched, tag, signed_by })
    }

    /// Who of `keys` signed the artifact's manifest `digest` (cosign's format), or why none
    /// did, as a refusal naming the artifact and the digest. A signature that held is not asked
    /// again.
    fn signer(
        &self,
        connection: &mut crate::charts::http::Connection,
        artifact: &Artifact,
        digest: &str,
        keys: &CosignKeys,
    ) -> std::result::Result<Signer, PullError> {
        let key = format!("{}/{}@{digest} {}", artifact.registry, artifact.repository, keys.id());
        if let Some(signer) = lock(&self.signed).get(&key) {
            return Ok(signer.clone());
        }
        let mut get = |path: &str, accept: &str, bound: u64| artifact.signature_part(connection, path, accept, bound);
        match crate::signatures::check(&mut get, digest, keys) {
            Ok(Ok(signer)) => {
                lock(&self.signed).insert(key, signer.clone());
                Ok(signer)
            }
            Ok(Err(refusal)) => {
                Err(PullError::new(PullFailure::Unverified, format!("{artifact} ({digest}) is refused: {refusal}")))
            }
            Err(err) => Err(PullError::new(PullFailure::Failed, err)),
        }
    }
}

/// The highest of the artifact's tags in `range` (cosign's own tags and tags that are no
/// version left out).
fn highest_tag(
    connection: &mut crate::charts::http::Connection,
    wanted: &Wanted,
    range: &str,
) -> std::result::Result<String, PullError> {
    let tags = wanted.artifact.tags(connection).map_err(|err| PullError::new(PullFailure::Failed, err))?;
    let versions = tags.iter().filter(|tag| !is_cosign_tag(tag)).map(|tag| (tag.as_str(), tag));
    crate::charts::repository::newest_allowed(versions, range).cloned().map_err(|available| {
        PullError::new(
            PullFailure::NotFound,
            format!("{wanted}: no tag is a version in the range (versions, newest first: {available})"),
        )
    })
}
