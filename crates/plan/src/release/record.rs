//! Release records: what weaver applied for a release, kept in the cluster as Secrets of type
//! `weaver.example.com/release.v1` named `weaver.<release>.v<revision>`, in the release
//! namespace. A record powers prune, the three-way diff, history and rollback.
//!
//! The payload is gzip'd JSON under the key `record`. A payload over [`CHUNK_BYTES`] is split
//! across `weaver.<release>.v<N>`, `weaver.<release>.v<N>.1`, `.2`, … so large releases never
//! hit the 1 MiB object limit; a revision with a chunk missing (an interrupted write) is ignored
//! rather than blocking anything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;

use base64::Engine;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use weaver_core::error::{Error, Result};
use weaver_core::manifest::{
    LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_RELEASE, MANAGER, ObjectKey, label, namespace_of,
};
use weaver_project::chart::ChartMeta;
use weaver_secrets::Redactor;

use crate::diff::is_secret;

/// The record format this weaver writes, and the newest it reads: its Secrets' type is
/// `weaver.example.com/release.v<format>`. A newer weaver reads every older format; this one
/// refuses a record of a newer format, by name, rather than take its release for one without
/// records (docs/src/reference/compatibility.md).
pub const RECORD_FORMAT: u32 = 1;
pub const RECORD_TYPE: &str = "weaver.example.com/release.v1";
const RECORD_TYPE_PREFIX: &str = "weaver.example.com/release.v";
pub const LABEL_REVISION: &str = "weaver.example.com/revision";
pub const LABEL_STATUS: &str = "weaver.example.com/status";
pub const LABEL_CHUNK: &str = "weaver.example.com/chunk";
pub const LABEL_CHUNKS: &str = "weaver.example.com/chunks";
/// The lock namespace of the environment that wrote a record: with the environment's name (as
/// its Lease), what tells its records from those of another project's environment of the same
/// name in the cluster (`--prune-releases`).
pub const LABEL_LOCK_NAMESPACE: &str = "weaver.example.com/lock-namespace";
const PAYLOAD_KEY: &str = "record";
/// Payload bytes per Secret: well under the 1 MiB object limit once base64 (4/3) and metadata
/// are added.
pub const CHUNK_BYTES: usize = 700 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Deployed,
    Failed,
    Superseded,
}

impl Status {
    fn parse(text: &str) -> Option<Status> {
        [Status::Deployed, Status::Failed, Status::Superseded].into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deployed => "deployed",
            Status::Failed => "failed",
            Status::Superseded => "superseded",
        }
    }
}

/// One object of a revision, and whether this apply got it into the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedObject {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub applied: bool,
    /// It holds a value decrypted from the environment's secrets outside a Secret's data (a
    /// template copied it): drift, which has no key to recognise it, shows its paths only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl RecordedObject {
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            group: weaver_core::manifest::api_group(&self.api_version).to_string(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// The Helm release a revision adopted: its name (in the release namespace) and revision then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedFrom {
    pub helm_release: String,
    pub helm_revision: u32,
}

/// An object a revision took from another environment (`weaver apply --take-ownership`): the
/// object, and the environment and release it was labelled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TakenFrom {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub environment: String,
    pub release: String,
}

/// The newest record of each release a reader wanted, by release name: shared with the
/// process's decoded records (`weaver ui` and the controller read the same ones again and again).
pub type Records = HashMap<String, Arc<Record>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub release: String,
    pub environment: String,
    pub revision: u32,
    pub status: Status,
    /// RFC 3339, UTC.
    pub time: String,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub dirty: Option<bool>,
    #[serde(default)]
    pub rollback_of: Option<u32>,
    /// The revision this one put back (`weaver drift --correct`): its objects, re-applied where
    /// they had drifted. A rollback goes back past it, as past the revision it corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_of: Option<u32>,
    /// The values flags (`--set …`, `--values FILE`) a chart release was applied with
    /// (`apply --allow-overrides`), as given: what was applied is then not all in git.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The environment's lock namespace (labelled [`LABEL_LOCK_NAMESPACE`]); records written
    /// before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_namespace: Option<String>,
    /// Who applied it: `alice@build-7 pid 4242`, or `EnvironmentSync team/shop`; records
    /// written before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<String>,
    /// The chart applied; records written before it was kept, and kustomizations, have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartMeta>,
    pub objects: Vec<RecordedObject>,
    /// The objects as applied (after weaver's transforms), in apply order.
    pub manifests: Vec<Value>,
    /// The release's lifecycle hooks as rendered (as helm keeps them in its release), so that
    /// removing the release can run its `pre-delete` and `post-delete` hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Value>,
    /// The hooks this apply ran, in order, and how each ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_runs: Vec<HookRun>,
    /// The Helm release whose objects this revision took over (`crate::release::adopt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<AdoptedFrom>,
    /// The objects this revision took from other environments (`--take-ownership`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken_from: Vec<TakenFrom>,
    /// The release's `values:` as its environment files (and promotions) set them, no secret
    /// among them: what `weaver promote`'s values pins read. Records written before it was
    /// kept have none.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub values: serde_json::Map<String, Value>,
    /// `hmac-sha256:<key id>:<MAC>` of [`Record::signed_content`], by the key of the apply that
    /// wrote it (`weaver_secrets::record_key`); None when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// One hook an apply ran (or meant to run), for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    pub event: weaver_helm::hooks::Event,
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub outcome: HookOutcome,
}

/// How a hook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookOutcome {
    /// Created, and (a Job or a Pod) completed.
    Succeeded,
    Failed,
    /// Not run: an earlier hook or object failed, or the apply was interrupted or a dry run.
    NotRun,
}

impl Record {
    /// What the signature covers: the record as JSON without its signature, with the status it
    /// was written with. Superseding a deployed revision relabels it, so `superseded` is signed
    /// as `deployed`; a failed record relabelled `deployed` no longer verifies.
    pub fn signed_content(&self) -> Vec<u8> {
        let status = match self.status {
            Status::Superseded => Status::Deployed,
            written => written,
        };
        let unsigned = Record { signature: None, status, ..self.clone() };
        serde_json::to_vec(&unsigned).expect("a record is JSON")
    }

    /// Whether the record holds exactly `hooks` (as the server stores them), in any order.
    pub fn has_hooks(&self, hooks: &[Value]) -> bool {
        self.hooks.len() == hooks.len() && hooks.iter().all(|h| self.hooks.contains(h))
    }

    /// The manifests that reached the cluster, in apply order, each with whether it holds a
    /// decrypted value (the object list says; a record without one says nothing).
    pub fn applied_manifests(&self) -> impl Iterator<Item = (&Value, bool)> {
        let listed: HashMap<ObjectKey, &RecordedObject> = self.objects.iter().map(|o| (o.key(), o)).collect();
        self.manifests.iter().filter_map(move |manifest| {
            let recorded = listed.get(&ObjectKey::of(manifest));
            match recorded {
                Some(o) if !o.applied => None,
                _ => Some((manifest, recorded.is_some_and(|o| o.sensitive))),
            }
        })
    }
}

/// Whether a listed Secret is a release record rather than an object of the release.
/// Whether `object` is a record Secret, of any format.
pub fn is_record(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("type").and_then(Value::as_str).is_some_and(|t| t.starts_with(RECORD_TYPE_PREFIX))
}

/// The format of a record Secret, from its type; None when the type does not say one.
fn record_format(secret: &Value) -> Option<u32> {
    secret.get("type")?.as_str()?.strip_prefix(RECORD_TYPE_PREFIX)?.parse().ok()
}

pub fn secret_name(release: &str, revision: u32, chunk: usize) -> String {
    if chunk == 0 { format!("weaver.{release}.v{revision}") } else { format!("weaver.{release}.v{revision}.{chunk}") }
}

/// The Secrets that store `record` in `namespace`.
pub fn to_secrets(record: &Record, namespace: &str) -> Result<Vec<Value>> {
    let json = serde_json::to_vec(record).map_err(|err| Error::new(format!("cannot encode release record: {err}")))?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = gzip
        .write_all(&json)
        .and_then(|()| gzip.finish())
        .map_err(|err| Error::new(format!("cannot compress release record: {err}")))?;
    let chunks: Vec<&[u8]> = compressed.chunks(CHUNK_BYTES).collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            let mut secret = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": secret_name(&record.release, record.revision, index),
                    "namespace": namespace,
                    "labels": {
                        LABEL_MANAGED_BY: MANAGER,
                        LABEL_RELEASE: record.release,
                        LABEL_ENVIRONMENT: record.environment,
                        LABEL_REVISION: record.revision.to_string(),
                        LABEL_STATUS: record.status.as_str(),
                        LABEL_CHUNK: index.to_string(),
                        LABEL_CHUNKS: chunks.len().to_string(),
                    },
                },
                "type": RECORD_TYPE,
                "data": { PAYLOAD_KEY: b64.encode(bytes) },
            });
            if let Some(lock_namespace) = &record.lock_namespace {
                secret["metadata"]["labels"][LABEL_LOCK_NAMESPACE] = Value::from(lock_namespace.as_str());
            }
            secret
        })
        .collect())
}

/// Every revision of `release` that has a Secret among `secrets`, complete or not, with the
/// names of its Secrets. A new revision numbers past all of them, so an interrupted write
/// never collides with the next one.
pub fn revisions<'a>(secrets: impl IntoIterator<Item = &'a Value>, release: &str) -> BTreeMap<u32, Vec<String>> {
    let mut revisions: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for secret in secrets.into_iter().filter(|s| is_record(s) && label(s, LABEL_RELEASE) == Some(release)) {
        let name = secret.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if let Some(revision) = label(secret, LABEL_REVISION).and_then(|r| r.parse().ok()) {
            revisions.entry(revision).or_default().push(name.to_string());
        }
    }
    revisions
}

/// Every complete record among `secrets` (others are ignored), oldest revision first. The
/// status label is authoritative: superseding a revision only relabels its Secrets.
pub fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Value>) -> Result<Vec<Record>> {
    Ok(shared_from_secrets(secrets)?.into_iter().map(Arc::unwrap_or_clone).collect())
}

/// [`from_secrets`], each record shared with the process's decoded records rather than
/// copied: for readers that only read (a view reads a thousand).
fn shared_from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Value>) -> Result<Vec<Arc<Record>>> {
    // (release, revision) → (namespace, expected chunks, status, chunk index → payload)
    type Chunks<'a> = (&'a str, usize, Option<Status>, BTreeMap<usize, &'a str>);
    let mut parts: BTreeMap<(String, u32), Chunks> = BTreeMap::new();
    for secret in secrets.into_iter().filter(|s| is_record(s)) {
        let name = secret.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = namespace_of(secret).unwrap_or_default();
        let parsed = (|| {
            let release = label(secret, LABEL_RELEASE)?.to_string();
            let revision = label(secret, LABEL_REVISION)?.parse().ok()?;
            let chunk = label(secret, LABEL_CHUNK).unwrap_or("0").parse().ok()?;
            let chunks = label(secret, LABEL_CHUNKS).unwrap_or("1").parse().ok()?;
            let status = label(secret, LABEL_STATUS).and_then(Status::parse);
            let payload = secret.pointer("/data/record")?.as_str()?;
            Some((release, revision, chunk, chunks, status, payload))
        })();
        match record_format(secret) {
            Some(format) if format <= RECORD_FORMAT => {}
            Some(format) => {
                return Err(Error::new(format!(
                    "release record Secret {namespace}/{name} is of format {format}, which a newer weaver wrote: this one ({}) reads formats up to {RECORD_FORMAT}",
                    env!("CARGO_PKG_VERSION")
                ))
                .with_help("use the weaver (the binary, or the controller's image) that applies this release, or a newer one"));
            }
            None => {
                return Err(Error::new(format!(
                    "release record Secret {namespace}/{name} is malformed (its type names no format)"
                )));
            }
        }
        let Some((release, revision, chunk, chunks, status, payload)) = parsed else {
            return Err(Error::new(format!(
                "release record Secret {namespace}/{name} is malformed (labels or payload missing)"
            )));
        };
        let entry = parts.entry((release, revision)).or_insert((namespace, chunks, None, BTreeMap::new()));
        if chunk == 0 {
            entry.2 = status;
        }
        entry.3.insert(chunk, payload);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut records = Vec::new();
    for ((release, revision), (namespace, expected, status, chunks)) in parts {
        if chunks.len() != expected || chunks.keys().copied().ne(0..expected) {
            continue;
        }
        // The same payloads decode to the same record: decoded once for a process that reads
        // them again and again (`weaver ui`'s views, the controller's reconciles).
        let digest = {
            use sha2::Digest;
            let mut digest = sha2::Sha256::new();
            for payload in chunks.values() {
                digest.update(payload.as_bytes());
                digest.update([0]);
            }
            <[u8; 32]>::from(digest.finalize())
        };
        if let Some(record) = DECODED.get(&digest) {
            records.push(labelled(record, status));
            continue;
        }
        let decode = || -> std::result::Result<Record, String> {
            let mut compressed = Vec::new();
            for payload in chunks.values() {
                compressed.extend(b64.decode(payload).map_err(|_| "its payload is not base64".to_string())?);
            }
            let mut json = Vec::new();
            flate2::read::GzDecoder::new(compressed.as_slice()).read_to_end(&mut json).map_err(|e| e.to_string())?;
            // serde_json's message may quote a string of the record, which can be a recorded
            // Secret's value: say where, not what.
            serde_json::from_slice(&json)
                .map_err(|e| format!("its content is not a release record (line {}, column {})", e.line(), e.column()))
        };
        let record = Arc::new(decode().map_err(|err| {
            Error::new(format!(
                "release record {namespace}/{} cannot be read: {err}",
                secret_name(&release, revision, 0)
            ))
        })?);
        DECODED.keep(digest, &record);
        records.push(labelled(record, status));
    }
    records.sort_by_key(|r| (r.release.clone(), r.revision));
    Ok(records)
}

/// `record` with the status its Secret's label gives, copied only where that differs.
fn labelled(mut record: Arc<Record>, status: Option<Status>) -> Arc<Record> {
    if let Some(status) = status.filter(|s| *s != record.status) {
        Arc::make_mut(&mut record).status = status;
    }
    record
}

/// Records decoded in this process, by the SHA-256 of their payloads (what a Secret's owner
/// cannot make collide), the least recently read half dropped when [`DECODED_KEPT`] are held.
static DECODED: Decoded = Decoded(std::sync::Mutex::new(None));

/// How many decoded records a process keeps: a few environments' thousand releases.
const DECODED_KEPT: usize = 8192;

struct Decoded(std::sync::Mutex<Option<DecodedRecords>>);

struct DecodedRecords {
    records: HashMap<[u8; 32], (Arc<Record>, u64)>,
    /// Counts reads, for which were read last.
    reads: u64,
}

impl Decoded {
    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Record>> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let held = held.as_mut()?;
        held.reads += 1;
        let (record, read) = held.records.get_mut(digest)?;
        *read = held.reads;
        Some(Arc::clone(record))
    }

    fn keep(&self, digest: [u8; 32], record: &Arc<Record>) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let held = held.get_or_insert_with(|| DecodedRecords { records: HashMap::new(), reads: 0 });
        if held.records.len() >= DECODED_KEPT {
            let mut reads: Vec<u64> = held.records.values().map(|(_, read)| *read).collect();
            let (_, median, _) = reads.select_nth_unstable(DECODED_KEPT / 2);
            let median = *median;
            held.records.retain(|_, (_, read)| *read > median);
        }
        held.records.insert(digest, (Arc::clone(record), held.reads));
    }
}

/// Which revision of a release a reader wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The newest `deployed` one: what diff, drift and prune compare with.
    Deployed,
    /// The newest of any status: what the last apply left in the cluster, even if it failed
    /// (`weaver status`).
    Applied,
}

/// The Secrets of every revision whose labels say `deployed` in `environment`, by (release,
/// revision): read from labels alone, nothing decoded.
pub fn deployed_revisions<'a>(
    secrets: impl IntoIterator<Item = &'a Value>,
    environment: &str,
) -> BTreeMap<(String, u32), Vec<&'a Value>> {
    revisions_wanted(secrets, environment, Wanted::Deployed)
}

/// The Secrets of every revision of `environment` that `wanted` may pick, by (release,
/// revision): read from labels alone, nothing decoded.
fn revisions_wanted<'a>(
    secrets: impl IntoIterator<Item = &'a Value>,
    environment: &str,
    wanted: Wanted,
) -> BTreeMap<(String, u32), Vec<&'a Value>> {
    let mut deployed: BTreeMap<(String, u32), Vec<&'a Value>> = BTreeMap::new();
    let labelled = |secret: &Value, name: &str, value: &str| label(secret, name) == Some(value);
    for secret in secrets.into_iter().filter(|s| is_record(s)) {
        if !labelled(secret, LABEL_ENVIRONMENT, environment)
            || (wanted == Wanted::Deployed && !labelled(secret, LABEL_STATUS, Status::Deployed.as_str()))
        {
            continue;
        }
        let release = label(secret, LABEL_RELEASE);
        if let (Some(release), Some(revision)) = (release, label(secret, LABEL_REVISION).and_then(|r| r.parse().ok())) {
            deployed.entry((release.to_string(), revision)).or_default().push(secret);
        }
    }
    deployed
}

/// The newest `deployed` record of each release among `listed` objects (anything that is not a
/// record is ignored), for `environment` only. Only that record is decoded (or, when a chunk
/// of it is missing, the deployed one before it).
pub fn last_deployed<'a>(listed: impl IntoIterator<Item = &'a Value>, environment: &str) -> Result<Records> {
    last_records(listed, environment, Wanted::Deployed)
}

/// The newest record of each release that `wanted` picks, as [`last_deployed`] reads them.
pub fn last_records<'a>(
    listed: impl IntoIterator<Item = &'a Value>,
    environment: &str,
    wanted: Wanted,
) -> Result<Records> {
    last_records_reusing(listed, environment, wanted, &HashMap::new())
}

/// [`last_records`], a revision `known` holds (records of the same releases, decoded before
/// for another `wanted`) taken from there rather than decoded again.
pub fn last_records_reusing<'a>(
    listed: impl IntoIterator<Item = &'a Value>,
    environment: &str,
    wanted: Wanted,
    known: &Records,
) -> Result<Records> {
    // Each release's revisions, newest first: the newest complete one is its record.
    let mut by_release: BTreeMap<String, Vec<(u32, Vec<&Value>)>> = BTreeMap::new();
    for ((release, revision), chunks) in revisions_wanted(listed, environment, wanted).into_iter().rev() {
        by_release.entry(release).or_default().push((revision, chunks));
    }
    // Decoding (gzip, then JSON) is most of the cost of reading a thousand records: in
    // parallel; an error is the first in release order.
    type Newest = Option<(String, Arc<Record>)>;
    let newest: Vec<Result<Newest>> = by_release
        .into_par_iter()
        .map(|(release, revisions)| {
            for (revision, chunks) in revisions {
                if let Some(record) = known.get(&release).filter(|r| r.revision == revision) {
                    return Ok(Some((release, Arc::clone(record))));
                }
                if let Some(record) = shared_from_secrets(chunks)?.pop() {
                    return Ok(Some((release, record)));
                }
            }
            Ok(None)
        })
        .collect();
    newest.into_iter().filter_map(Result::transpose).collect()
}

impl Record {
    /// Revision 1 of `release` in `environment`, deployed, holding `manifests`, and nothing else
    /// known (no time, commit, objects or values): what a caller fills in from.
    pub fn deployed(release: &str, environment: &str, manifests: Vec<Value>) -> Record {
        Record {
            applied_by: None,
            release: release.into(),
            environment: environment.into(),
            revision: 1,
            status: Status::Deployed,
            time: String::new(),
            commit: None,
            dirty: None,
            rollback_of: None,
            correction_of: None,
            overrides: Vec::new(),
            lock_namespace: None,
            chart: None,
            objects: Vec::new(),
            manifests,
            hooks: Vec::new(),
            hook_runs: Vec::new(),
            adopted_from: None,
            taken_from: Vec::new(),
            values: Default::default(),
            signature: None,
        }
    }
}

impl Record {
    /// Rollback (and removing a release the environment no longer has) decrypts nothing, so the
    /// redactor learns the recorded values that came from the environment's secrets instead: the
    /// Secrets' data, and every string of objects the record marks `sensitive` (a template copied
    /// a secret into them; which string is unknown, so some harmless text in their spec or data is
    /// redacted too). A server message or a diff quoting one must not print it.
    pub fn register_secret_values(&self, redactor: &Redactor) {
        let sensitive: HashSet<ObjectKey> =
            self.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key).collect();
        for hook in self.hooks.iter().filter(|h| is_secret(h)) {
            redactor.register_secret_data(hook);
        }
        for manifest in &self.manifests {
            if is_secret(manifest) {
                redactor.register_secret_data(manifest);
            } else if sensitive.contains(&ObjectKey::of(manifest)) {
                // Its identity (apiVersion, kind, metadata) names it in every message: not secret.
                let fields = manifest.as_object().into_iter().flatten();
                fields
                    .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                    .for_each(|(_, value)| redactor.register_tree(value));
            }
        }
    }
}

/// A fixture for tests: revision 1 of release `web` in environment `dev`, deployed, that
/// applied `manifests` (each recorded as applied); tests change what they look at.
#[cfg(test)]
impl Record {
    pub(crate) fn of_manifests(manifests: Vec<Value>) -> Record {
        let text = |m: &Value, pointer: &str| m.pointer(pointer).and_then(Value::as_str).map(str::to_string);
        let objects = manifests
            .iter()
            .map(|m| RecordedObject {
                api_version: text(m, "/apiVersion").unwrap_or_default(),
                kind: text(m, "/kind").unwrap_or_default(),
                namespace: text(m, "/metadata/namespace"),
                name: text(m, "/metadata/name").unwrap_or_default(),
                applied: true,
                sensitive: false,
            })
            .collect();
        Record { time: "2026-11-21T10:00:00Z".into(), objects, ..Record::deployed("web", "dev", manifests) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(manifests: Vec<Value>) -> Record {
        Record {
            revision: 4,
            commit: Some("abc".into()),
            dirty: Some(false),
            lock_namespace: Some("weaver-locks".into()),
            chart: Some(ChartMeta { name: "web-app".into(), version: "1.2.0".into(), app_version: None }),
            objects: vec![RecordedObject {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("shop".into()),
                name: "web".into(),
                applied: true,
                sensitive: false,
            }],
            ..Record::of_manifests(manifests)
        }
    }

    #[test]
    fn a_signature_survives_superseding_but_not_a_failed_record_relabelled_deployed() {
        let deployed = Record::of_manifests(Vec::new());
        let superseded = Record { status: Status::Superseded, ..deployed.clone() };
        let failed = Record { status: Status::Failed, ..deployed.clone() };
        assert_eq!(superseded.signed_content(), deployed.signed_content());
        assert_ne!(failed.signed_content(), deployed.signed_content());
    }

    #[test]
    fn a_record_of_a_newer_format_is_refused_by_name_and_an_older_one_read() {
        let mut secrets = to_secrets(&record(Vec::new()), "shop").unwrap();
        assert_eq!(from_secrets(&secrets).unwrap().len(), 1, "format {RECORD_FORMAT}, this weaver's");
        secrets[0]["type"] = json!(format!("{RECORD_TYPE_PREFIX}{}", RECORD_FORMAT + 1));
        assert!(is_record(&secrets[0]), "a newer format is a record still");
        let err = from_secrets(&secrets).unwrap_err();
        let name = secrets[0]["metadata"]["name"].as_str().unwrap();
        assert!(err.to_string().contains(&format!("release record Secret shop/{name} is of format 2")), "{err}");
        assert!(err.to_string().contains("which a newer weaver wrote"), "{err}");
        secrets[0]["type"] = json!(format!("{RECORD_TYPE_PREFIX}x"));
        assert!(from_secrets(&secrets).unwrap_err().to_string().contains("its type names no format"));
    }

    #[test]
    fn a_corrupt_record_is_an_error_that_quotes_nothing_of_it() {
        use std::io::Write;
        let mut secrets = to_secrets(&record(Vec::new()), "shop").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"release": "web", "revision": "seed-password-8b2d"}"#).unwrap();
        let payload = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        secrets[0]["data"]["record"] = Value::String(payload);
        let err = from_secrets(&secrets).unwrap_err().to_string();
        assert!(err.contains("cannot be read: its content is not a release record (line 1, column"), "{err}");
        assert!(!err.contains("seed-password"), "{err}");
        secrets[0]["data"]["record"] = Value::String("not base64!".into());
        let err = from_secrets(&secrets).unwrap_err().to_string();
        assert!(err.contains("cannot be read: its payload is not base64"), "{err}");
    }

    #[test]
    fn round_trips_through_one_secret() {
        let original = record(vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}})]);
        let secrets = to_secrets(&original, "shop").unwrap();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0]["metadata"]["name"], "weaver.web.v4");
        assert_eq!(secrets[0]["type"], RECORD_TYPE);
        assert_eq!(secrets[0]["metadata"]["labels"][LABEL_LOCK_NAMESPACE], "weaver-locks");
        assert_eq!(from_secrets(&secrets).unwrap(), vec![original]);
    }

    /// A record read again comes from what this process decoded, with the status its labels
    /// say now (a deployed record superseded keeps its payload); the payload is what is matched.
    #[test]
    fn a_record_read_again_is_the_one_decoded_with_its_labels_status() {
        let original = record(vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "reread"}})]);
        let mut secrets = to_secrets(&original, "shop").unwrap();
        assert_eq!(from_secrets(&secrets).unwrap(), vec![original.clone()]);
        secrets[0]["metadata"]["labels"][LABEL_STATUS] = json!("superseded");
        let again = from_secrets(&secrets).unwrap();
        assert_eq!(again[0].status, Status::Superseded);
        assert_eq!(Record { status: original.status, ..again[0].clone() }, original);
        // Another payload is decoded, not matched to the first.
        let mut other = original.clone();
        other.manifests[0]["metadata"]["name"] = json!("other");
        assert_eq!(from_secrets(&to_secrets(&other, "shop").unwrap()).unwrap(), vec![other]);
    }

    #[test]
    fn decoded_records_kept_are_bounded_by_dropping_the_least_recently_read() {
        let kept = Decoded(std::sync::Mutex::new(None));
        let digest = |i: usize| {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            digest
        };
        let held = Arc::new(record(Vec::new()));
        for i in 0..DECODED_KEPT {
            kept.keep(digest(i), &held);
        }
        // The first one read since: among the newest, kept.
        assert!(kept.get(&digest(0)).is_some());
        kept.keep(digest(DECODED_KEPT), &held);
        let count = kept.0.lock().unwrap().as_ref().unwrap().records.len();
        assert!(count <= DECODED_KEPT / 2 + 1, "{count} kept");
        assert!(kept.get(&digest(0)).is_some(), "the one read last stays");
        assert!(kept.get(&digest(DECODED_KEPT)).is_some(), "the one kept last stays");
        assert!(kept.get(&digest(1)).is_none(), "one never read goes");
    }

    #[test]
    fn last_deployed_is_the_newest_deployed_revision_of_the_environment() {
        let at = |revision, status, environment: &str| Record {
            revision,
            status,
            environment: environment.into(),
            ..record(Vec::new())
        };
        let mut secrets = Vec::new();
        for r in [
            at(1, Status::Superseded, "dev"),
            at(2, Status::Deployed, "dev"),
            at(3, Status::Failed, "dev"),
            at(4, Status::Deployed, "prod"),
        ] {
            secrets.extend(to_secrets(&r, "shop").unwrap());
        }
        secrets.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "other"}}));
        let newest = last_deployed(&secrets, "dev").unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest["web"].revision, 2);
        assert!(last_deployed(&secrets, "staging").unwrap().is_empty());
    }

    #[test]
    fn a_revision_decoded_before_is_taken_from_what_is_known() {
        let at = |revision, status| Record { revision, status, ..record(Vec::new()) };
        let mut secrets = Vec::new();
        for r in [at(1, Status::Deployed), at(2, Status::Failed)] {
            secrets.extend(to_secrets(&r, "shop").unwrap());
        }
        let deployed = last_deployed(&secrets, "dev").unwrap();
        // Told apart from what the Secrets hold: taken from `known`, not decoded.
        let mut known = deployed.clone();
        Arc::make_mut(known.get_mut("web").unwrap()).time = "known".into();
        let applied = last_records_reusing(&secrets, "dev", Wanted::Applied, &known).unwrap();
        assert_eq!(applied["web"].revision, 2);
        assert_ne!(applied["web"].time, "known", "revision 2 is decoded");
        let deployed = last_records_reusing(&secrets, "dev", Wanted::Deployed, &known).unwrap();
        assert_eq!((deployed["web"].revision, deployed["web"].time.as_str()), (1, "known"));
    }

    #[test]
    fn last_deployed_of_many_releases_skips_an_incomplete_newest_revision() {
        let at = |release: &str, revision| Record {
            release: release.into(),
            revision,
            status: Status::Deployed,
            ..record(Vec::new())
        };
        let mut secrets = Vec::new();
        for r in [at("web", 2), at("api", 5), at("db", 1), at("db", 2)] {
            secrets.extend(to_secrets(&r, "shop").unwrap());
        }
        // Revision 3 of web says it has a second chunk, which is missing (an interrupted write).
        let mut incomplete = to_secrets(&at("web", 3), "shop").unwrap();
        incomplete[0]["metadata"]["labels"][LABEL_CHUNKS] = json!("2");
        secrets.extend(incomplete);
        let newest = last_deployed(&secrets, "dev").unwrap();
        let revisions: BTreeMap<&str, u32> = newest.iter().map(|(name, r)| (name.as_str(), r.revision)).collect();
        assert_eq!(revisions, BTreeMap::from([("api", 5), ("db", 2), ("web", 2)]));
        assert!(newest.iter().all(|(name, r)| *name == r.release));
        // The next apply (a new leader's, after a kill) numbers its revision after the
        // interrupted one (`apply::records`), so no leftover chunk mixes into its record.
        assert_eq!(super::revisions(&secrets, "web").into_keys().next_back(), Some(3));
    }

    #[test]
    fn large_records_split_and_reassemble_and_a_missing_chunk_drops_the_revision() {
        // Incompressible content, so the gzip'd payload really exceeds one chunk.
        let mut state = 0x2545_f491_u64;
        let noise: String = (0..3 * CHUNK_BYTES)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let original = record(vec![json!({"kind": "ConfigMap", "data": {"blob": noise}})]);
        let secrets = to_secrets(&original, "shop").unwrap();
        assert!(secrets.len() >= 2, "{} chunks", secrets.len());
        assert_eq!(secrets[1]["metadata"]["name"], "weaver.web.v4.1");
        let mut shuffled = secrets.clone();
        shuffled.reverse();
        assert_eq!(from_secrets(&shuffled).unwrap(), vec![original]);
        assert!(from_secrets(&secrets[..secrets.len() - 1]).unwrap().is_empty());
    }

    #[test]
    fn the_status_label_wins_and_revisions_include_incomplete_ones() {
        let original = record(vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}})]);
        let mut secrets = to_secrets(&original, "shop").unwrap();
        secrets[0]["metadata"]["labels"][LABEL_STATUS] = json!("superseded");
        assert_eq!(from_secrets(&secrets).unwrap()[0].status, Status::Superseded);

        let mut incomplete = to_secrets(&Record { revision: 5, ..original.clone() }, "shop").unwrap();
        incomplete[0]["metadata"]["labels"][LABEL_CHUNKS] = json!("2");
        secrets.extend(incomplete);
        assert_eq!(from_secrets(&secrets).unwrap().len(), 1);
        let revisions = revisions(&secrets, "web");
        assert_eq!(revisions.keys().copied().collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(revisions[&5], vec!["weaver.web.v5".to_string()]);
        assert!(super::revisions(&secrets, "other").is_empty());
    }

    #[test]
    fn recorded_secret_values_and_values_of_sensitive_objects_are_redacted_but_names_are_not() {
        let redactor = Redactor::new();
        let mut record = Record::of_manifests(vec![
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secrets", "namespace": "shop"},
                "data": {"API_KEY": "ZGV2LWFwaS1rZXktNGYxYzlhN2U="}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "shop"},
                "data": {"COPY": "copied-secret-value"}}),
        ]);
        record.status = Status::Superseded;
        for object in &mut record.objects {
            object.sensitive = true;
        }
        record.register_secret_values(&redactor);
        let message =
            "Invalid value: \"dev-api-key-4f1c9a7e\" and \"copied-secret-value\" in ConfigMap shop/web-config";
        let redacted = redactor.redact(message);
        assert!(!redacted.contains("dev-api-key-4f1c9a7e") && !redacted.contains("copied-secret-value"), "{redacted}");
        assert!(redacted.contains("ConfigMap shop/web-config"), "{redacted}");
    }
}
