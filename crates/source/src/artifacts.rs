//! The controller's OCI artifacts of sources (an EnvironmentSync's `spec.source.oci`): weaver
//! repositories as `weaver push artifact` makes them, or rendered manifests (`weaver hydrate
//! --oci`, `flux push artifact`; see [`crate::manifests`]). The tag resolved to its manifest's
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
    /// Not a Flux artifact, a tar with an entry that is not a plain file or directory inside
    /// it, or rendered manifests with a file that is not (see [`crate::manifests::check_tree`]).
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
#[derive(Debug)]
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

    /// The tree (a weaver repository or rendered manifests) `wanted` names now, pulled with
    /// `machine`'s credentials and, with `keys`, only when one of them signed its manifest;
    /// unpacked, leased while the [`Fetched`] lives, whose `commit` is the manifest's digest.
    /// Every request (tags, manifest, signatures, layer) ends by `deadline`: the caller that
    /// stops waiting then leaves no request running behind it.
    pub fn pull(
        &self,
        wanted: &Wanted,
        keys: Option<&CosignKeys>,
        machine: &Machine,
        deadline: Instant,
    ) -> std::result::Result<Pulled, PullError> {
        let started = Instant::now();
        let failed = |err: Error| PullError::new(PullFailure::Failed, err);
        let mut connection = wanted.artifact.connect(machine).map_err(failed)?.with_deadline(deadline);
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
        // One layer is two entries when two manifests read it as two kinds: rendered manifests
        // are checked whole before they are cached, a repository's files are not.
        let hex = layer.digest.trim_start_matches("sha256:");
        let entry = if layer.manifests { format!("{hex}.manifests") } else { hex.to_string() };
        let path = self.dir.join(&entry);
        let mut transferred = 0;
        // Put in place whole (a rename) or not at all: an entry without its directory is one
        // being written, or whose pull failed.
        let lease = match self.budget.lease_held(&path).filter(|_| path.is_dir()) {
            Some(lease) => lease,
            None => {
                // Another's pull of the layer that failed (its deadline, which may be shorter
                // than this one's) is not this one's answer.
                let pulled = self.flights.run_own_failure(
                    entry.clone(),
                    Result::is_err,
                    || {
                        let writing = self.budget.writing(&path, Kind::Artifact);
                        let _held = lock(&writing);
                        let data =
                            oci::repository_blob(&mut connection, artifact, &layer, max_bytes).map_err(failed)?;
                        transferred = data.len() as u64;
                        let partial = self.dir.join(format!("{entry}.partial{DISCARDED}"));
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
                        // Rendered manifests are applied as they are: checked whole before any is.
                        if layer.manifests
                            && let Err(why) = crate::manifests::check_tree(&partial)
                        {
                            let _ = std::fs::remove_dir_all(&partial);
                            return Err(PullError::new(
                                PullFailure::Invalid,
                                format!("{artifact} ({}) is refused: {why}", layer.digest),
                            ));
                        }
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
            manifests: layer.manifests,
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;
    use std::time::Duration;
    use weaver_test_support::http_server::TestServer;

    /// A registry answering one artifact of `tree` (rendered manifests) at tag `main`, and
    /// 404 to anything else.
    fn registry(tree: &[(&str, &str)]) -> (TestServer, String) {
        registry_slowed(tree, Duration::ZERO)
    }

    /// [`registry`], each blob answered after `delay`.
    fn registry_slowed(tree: &[(&str, &str)], delay: Duration) -> (TestServer, String) {
        let tree: oci::Tree = tree.iter().map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())).collect();
        let built = oci::build_artifact(&tree, BTreeMap::new());
        let (manifest, blobs) = (built.manifest.clone(), built.blobs.clone());
        let server = TestServer::start(move |_, request| {
            if request.path == "/v2/shop/manifests/main" {
                let header = format!("Content-Type: {}\r\n", oci::MANIFEST);
                return ("200 OK", header, manifest.clone());
            }
            std::thread::sleep(delay);
            let blob = blobs.iter().find(|b| request.path.ends_with(&crate::charts::sha256_digest(b)));
            match blob {
                Some(blob) => ("200 OK", String::new(), blob.clone()),
                None => ("404 Not Found", String::new(), Vec::new()),
            }
        });
        (server, built.digest)
    }

    /// A cache in a temporary directory, and the artifact `server` answers.
    fn cache(server: &TestServer) -> (tempfile::TempDir, ArtifactCache, Wanted) {
        let dir = tempfile::tempdir().unwrap();
        let limits = crate::CacheLimits { max_disk_bytes: 1 << 30, max_repositories: 100 };
        let artifacts = ArtifactCache::new(dir.path().join("artifacts"), Budget::new(limits)).unwrap();
        let artifact = Artifact::parse(&format!("127.0.0.1:{}/shop:main", server.port), true, "test").unwrap();
        (dir, artifacts, Wanted { artifact, semver: None })
    }

    #[test]
    fn an_artifact_s_layer_is_downloaded_once_per_digest_and_its_manifest_asked_for_at_each_pull() {
        let (server, digest) =
            registry(&[("dev/web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n")]);
        let (_dir, artifacts, artifact) = cache(&server);
        let first = artifacts.pull(&artifact, None, &Machine::anonymous(), in_a_minute()).unwrap().fetched;
        assert_eq!(first.commit, digest);
        assert!(first.manifests && first.transferred, "{first:?}");
        assert!(first.repository.join("dev/web.yaml").is_file());
        let second = artifacts.pull(&artifact, None, &Machine::anonymous(), in_a_minute()).unwrap().fetched;
        assert_eq!(
            (second.commit.as_str(), second.repository.as_path()),
            (digest.as_str(), first.repository.as_path())
        );
        assert!(!second.transferred && second.bytes_received == 0, "{second:?}");
        let asked = |what: &str| server.received().iter().filter(|r| r.path.contains(what)).count();
        assert_eq!((asked("/manifests/"), asked("/blobs/")), (2, 1), "{:?}", server.received());
    }

    fn in_a_minute() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_registry_slower_than_the_deadline_ends_the_pull_by_it() {
        // The manifest at once, the layer only after the deadline.
        let (server, _) = registry_slowed(
            &[("dev/web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n")],
            Duration::from_secs(4),
        );
        let (_dir, artifacts, artifact) = cache(&server);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(1);
        let failed = artifacts.pull(&artifact, None, &Machine::anonymous(), deadline).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "ended after {:?}: {failed:?}", started.elapsed());
        assert_eq!(failed.failure, PullFailure::Failed, "{failed:?}");
        // Past it, no request is sent at all.
        let asked = server.received().len();
        let late = artifacts.pull(&artifact, None, &Machine::anonymous(), Instant::now()).unwrap_err();
        assert!(late.message.contains("the pull's deadline passed"), "{late:?}");
        assert_eq!(server.received().len(), asked);
    }

    #[test]
    fn rendered_manifests_with_a_document_that_is_no_object_are_refused_and_not_cached() {
        let (server, _) =
            registry(&[("dev/web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n---\ndata: {}\n")]);
        let (_dir, artifacts, artifact) = cache(&server);
        let refused = artifacts.pull(&artifact, None, &Machine::anonymous(), in_a_minute()).unwrap_err();
        assert_eq!(refused.failure, PullFailure::Invalid);
        assert!(refused.message.contains("`dev/web.yaml:6` (document 2) has no `apiVersion`"), "{}", refused.message);
        assert_eq!(std::fs::read_dir(artifacts.dir()).unwrap().count(), 0, "nothing left in the cache");
    }
}
