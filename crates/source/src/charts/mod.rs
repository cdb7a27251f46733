//! Remote Helm charts: the lock (`charts.lock`, at the repository's root) that pins each chart
//! releases name remotely to an exact version, URL and sha256 digest; the content-addressed
//! cache their archives are pulled into; and the resolving and pulling (`weaver charts lock`
//! and `fetch`). The CLI's rendering reads only the cache, verified against the lock: it never
//! fetches. The controller's pulls what the lock pins into a cache of its own ([`pulls`]).

pub mod http;
pub mod oci;
pub mod pulls;
pub mod registry_login;
pub mod repository;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use weaver_core::error::{Error, Location, Result};
use weaver_project::chart::{ChartKeys, RemoteChart, is_sha256_digest};
use weaver_project::source::Source;
use weaver_verify::cosign::CosignKeys;

pub const LOCK_FILE: &str = "charts.lock";

/// The largest provenance file read: a chart's `Chart.yaml` and a digest, signed, are a few KiB;
/// a server that sends more is not read further.
const MAX_PROVENANCE: u64 = 1 << 20;

/// One chart pinned: what releases ask for (`repository`, `name`, `constraint`) and what it
/// resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedChart {
    pub repository: String,
    pub name: String,
    /// The release's `version` as written; absent for "the newest".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub constraint: String,
    pub version: String,
    /// Where the archive was pulled from (an OCI chart's manifest, by digest).
    pub url: String,
    /// The archive's `sha256:…`.
    pub digest: String,
    /// The remote charts of this lock whose archives declare this chart as a dependency and do
    /// not vendor it (`[]` for none): pinning it again changes their releases (`weaver
    /// changed`). Derived: `charts lock` writes it anew each time. None in a lock written
    /// before it was kept, where any remote chart's archive may declare the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_by: Option<Vec<ChartRef>>,
    /// Who signed its provenance file (`Name <email> (OpenPGP key FINGERPRINT)`), checked when
    /// it was pinned, for a repository with `verify: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl LockedChart {
    pub fn is_for(&self, chart: &RemoteChart) -> bool {
        names(chart, &self.repository, &self.name, &self.constraint)
    }

    /// Whether the entry is for the chart `chart` names.
    pub fn is(&self, chart: &ChartRef) -> bool {
        self.repository == chart.repository && self.name == chart.name && self.constraint == chart.constraint
    }

    /// What the entry is for: the chart as releases name it.
    pub fn chart_ref(&self) -> ChartRef {
        ChartRef { repository: self.repository.clone(), name: self.name.clone(), constraint: self.constraint.clone() }
    }

    /// What it is pinned to, whoever requires it.
    pub fn pin(&self) -> (&str, &str, &str) {
        (&self.version, &self.url, &self.digest)
    }
}

/// A chart as a release or a `Chart.yaml` dependency names it: repository, name and version
/// constraint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartRef {
    pub repository: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub constraint: String,
}

impl ChartRef {
    pub fn of(chart: &RemoteChart) -> ChartRef {
        ChartRef { repository: chart.repository.clone(), name: chart.name.clone(), constraint: chart.version.clone() }
    }

    pub fn is_for(&self, chart: &RemoteChart) -> bool {
        names(chart, &self.repository, &self.name, &self.constraint)
    }
}

/// Whether a release naming `chart` names the chart of this repository, name and constraint.
fn names(chart: &RemoteChart, repository: &str, name: &str, constraint: &str) -> bool {
    chart.repository == repository && chart.name == name && chart.version == constraint
}

/// `charts.lock`: sorted by repository, name and constraint, so that its diffs are small.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    #[serde(default)]
    pub charts: Vec<LockedChart>,
}

impl Lock {
    /// The repository's lock; an empty one when there is none.
    pub fn load(source: &dyn Source) -> Result<Lock> {
        let path = Path::new(LOCK_FILE);
        let Some(bytes) = source.read(path).map_err(|e| Error::io("read", path, e))? else {
            return Ok(Lock::default());
        };
        let text = weaver_project::source::utf8(path, bytes)?;
        let lock: Lock =
            weaver_yaml::from_str_as::<Option<Lock>>(path, &text, "invalid lock file")?.unwrap_or_default();
        for (i, entry) in lock.charts.iter().enumerate() {
            if !is_sha256_digest(&entry.digest) {
                return Err(Error::at(
                    Location::file(path),
                    format!(
                        "chart {} (`{}/{}`): `{}` is not a sha256 digest",
                        i + 1,
                        entry.repository,
                        entry.name,
                        entry.digest
                    ),
                )
                .with_help("run `weaver charts lock` to write the lock again"));
            }
        }
        Ok(lock)
    }

    pub fn find(&self, chart: &RemoteChart) -> Option<&LockedChart> {
        self.charts.iter().find(|c| c.is_for(chart))
    }

    pub fn to_yaml(&self) -> String {
        let value = serde_json::to_value(self).expect("a lock serializes");
        format!(
            "# Written by `weaver charts lock`: the exact version, URL and digest of each remote chart.\n# `weaver charts fetch` pulls these into the chart cache; render, diff and apply verify them.\n{}",
            weaver_yaml::to_yaml_string(&value)
        )
    }

    fn insert(&mut self, locked: LockedChart) {
        self.charts.retain(|c| {
            !(c.repository == locked.repository && c.name == locked.name && c.constraint == locked.constraint)
        });
        self.charts.push(locked);
        self.charts
            .sort_by(|a, b| (&a.repository, &a.name, &a.constraint).cmp(&(&b.repository, &b.name, &b.constraint)));
    }
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The chart cache: archives by digest, `<dir>/sha256/<hex>.tgz`. `WEAVER_CHART_CACHE`, else
/// `$XDG_CACHE_HOME/weaver/charts`, else `~/.cache/weaver/charts`.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Cache> {
        let dir = match (var("WEAVER_CHART_CACHE"), var("XDG_CACHE_HOME"), var("HOME")) {
            (Some(dir), _, _) => PathBuf::from(dir),
            (None, Some(xdg), _) => Path::new(&xdg).join("weaver/charts"),
            (None, None, Some(home)) => Path::new(&home).join(".cache/weaver/charts"),
            (None, None, None) => {
                return Err(Error::new("no chart cache: none of WEAVER_CHART_CACHE, XDG_CACHE_HOME and HOME is set")
                    .with_help("set WEAVER_CHART_CACHE to a directory for remote charts"));
            }
        };
        Ok(Cache { dir })
    }

    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join("sha256").join(format!("{}.tgz", digest.trim_start_matches("sha256:")))
    }

    /// The cached archive of `digest`: None when absent, `Err(actual)` when its content has
    /// another digest (a damaged or tampered file).
    fn read(&self, digest: &str) -> Result<Option<std::result::Result<Vec<u8>, String>>> {
        let path = self.path(digest);
        match std::fs::read(&path) {
            Ok(data) => {
                let actual = sha256_digest(&data);
                Ok(Some(if actual == digest { Ok(data) } else { Err(actual) }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read cached chart", &path, e)),
        }
    }

    /// Stores an archive under its digest (written aside, then renamed: never half a file).
    fn store(&self, data: &[u8]) -> Result<()> {
        let path = self.path(&sha256_digest(data));
        let dir = path.parent().expect("a cache path has a directory");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create chart cache directory", dir, e))?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io("write chart cache", dir, e))?;
        file.write_all(data).map_err(|e| Error::io("write chart cache", file.path(), e))?;
        file.persist(&path).map_err(|e| Error::io("write chart cache", &path, e.error))?;
        Ok(())
    }
}

/// The archive of `chart` as `charts.lock` pins it, from the cache and verified, with the path
/// its files are shown under (`<reference>-<version>.tgz`). `user` says who needs it (`release
/// `web``) for messages; every error says which command fixes it.
pub fn cached_archive(lock: &Lock, cache: &Cache, user: &str, chart: &RemoteChart) -> Result<(Vec<u8>, PathBuf)> {
    let locked = pinned(lock, user, chart)?;
    let origin = PathBuf::from(format!("{}-{}.tgz", chart.reference(), locked.version));
    match cache.read(&locked.digest)? {
        Some(Ok(data)) => Ok((data, origin)),
        None => Err(Error::new(format!(
            "chart {} {} of {user} is not in the chart cache ({})",
            chart.describe(),
            locked.version,
            cache.path(&locked.digest).display()
        ))
        .with_help(
            "run `weaver charts fetch` to pull the charts charts.lock pins (render, diff and apply never fetch)",
        )),
        Some(Err(actual)) => Err(Error::new(format!(
            "chart {} {} of {user}: the cached archive {} has digest {actual}, but {LOCK_FILE} pins {}",
            chart.describe(),
            locked.version,
            cache.path(&locked.digest).display(),
            locked.digest
        ))
        .with_help("the cached file is damaged or was changed: run `weaver charts fetch` to pull it again")),
    }
}

/// The lock's entry for `chart` (of `user`, for messages; empty when the caller names it): an
/// error when the lock has none, or when the chart's repository checks provenance (`verify:
/// true`) and the entry records no check, as a lock written before it was asked for.
pub fn pinned<'l>(lock: &'l Lock, user: &str, chart: &RemoteChart) -> Result<&'l LockedChart> {
    let of = if user.is_empty() { String::new() } else { format!(" of {user}") };
    let Some(locked) = lock.find(chart) else {
        return Err(Error::new(format!("chart {}{of} is not in {LOCK_FILE}", chart.describe()))
            .with_help("run `weaver charts lock` to resolve it and pin it, then commit charts.lock"));
    };
    if chart.keys.is_some() && locked.signed_by.is_none() {
        return Err(Error::new(format!(
            "chart {} {}{of}: its repository says `verify: true`, but {LOCK_FILE} records no check of its provenance file",
            chart.describe(),
            locked.version
        ))
        .with_help("run `weaver charts lock` to check its provenance file and record who signed it, then commit charts.lock"));
    }
    Ok(locked)
}

/// Where a render's remote charts come from.
#[derive(Clone, Default)]
pub enum Archives {
    /// This machine's chart cache ([`Cache::from_env`]), which `weaver charts fetch` fills:
    /// render never fetches. The CLI's.
    #[default]
    Machine,
    /// The controller's cache, pulling what the lock pins on first use (see [`pulls`]).
    Pulled(Arc<pulls::Pulls>),
}

impl fmt::Debug for Archives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Archives::Machine => f.write_str("Machine"),
            Archives::Pulled(pulls) => pulls.fmt(f),
        }
    }
}

impl Archives {
    /// The archive of `chart` as `lock` pins it, verified: see [`cached_archive`].
    pub fn archive(&self, lock: &Lock, user: &str, chart: &RemoteChart) -> Result<(Vec<u8>, PathBuf)> {
        match self {
            Archives::Machine => {
                let cache = Cache::from_env(|key| std::env::var(key).ok())?;
                cached_archive(lock, &cache, user, chart)
            }
            Archives::Pulled(pulls) => pulls.archive(lock, user, chart),
        }
    }
}

/// What happened to one chart in a lock or fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Resolved now (new, changed constraint, or `--update`).
    Resolved,
    /// Pinned already; pulled into the cache.
    Pulled,
    /// Pinned and cached already.
    Cached,
}

/// Pulls charts, one connection per repository.
pub struct Fetcher {
    machine: Arc<http::Machine>,
    cache: Cache,
    connections: HashMap<String, http::Connection>,
    indexes: HashMap<String, repository::Index>,
    /// By path: see [`Fetcher::trust`].
    keyrings: HashMap<String, weaver_verify::Keyring>,
    /// By path: see [`Fetcher::trust_cosign`].
    cosign_keys: HashMap<String, CosignKeys>,
}

impl Fetcher {
    pub fn new(machine: http::Machine, cache: Cache) -> Fetcher {
        Fetcher::sharing(Arc::new(machine), cache)
    }

    /// [`Fetcher::new`] with a machine other fetchers share (one reconcile's pulls).
    pub fn sharing(machine: Arc<http::Machine>, cache: Cache) -> Fetcher {
        Fetcher {
            machine,
            cache,
            connections: HashMap::new(),
            indexes: HashMap::new(),
            keyrings: HashMap::new(),
            cosign_keys: HashMap::new(),
        }
    }

    fn connection(&mut self, chart: &RemoteChart) -> Result<&mut http::Connection> {
        if !self.connections.contains_key(&chart.repository) {
            let base = if chart.is_oci() { oci::location(chart).0 } else { chart.repository.clone() };
            let connection =
                http::Connection::open(&self.machine, &chart.repository, chart.repository_name.as_deref(), &base)?;
            self.connections.insert(chart.repository.clone(), connection);
        }
        Ok(self.connections.get_mut(&chart.repository).expect("inserted above"))
    }

    /// Pins `chart` in `lock`: kept when pinned already (unless `update`), else resolved again;
    /// either way its archive ends in the cache, verified.
    pub fn lock(&mut self, lock: &mut Lock, chart: &RemoteChart, update: bool) -> Result<Outcome> {
        match lock.find(chart).cloned() {
            // Pinned before its repository checked provenance: checked now, and recorded.
            Some(mut locked) if !update && chart.keys.is_some() && locked.signed_by.is_none() => {
                let outcome = self.pull(chart, &locked, false)?;
                locked.signed_by = self.signature(chart, &locked)?;
                lock.insert(locked);
                return Ok(outcome);
            }
            Some(_) if !update => return self.fetch(lock, chart),
            _ => {}
        }
        let (locked, data) = if chart.is_oci() {
            let (mut locked, data) = oci::resolve(self.connection(chart)?, chart)?;
            locked.signed_by = self.signature(chart, &locked)?;
            (locked, data)
        } else {
            self.resolve_from_index(chart)?
        };
        self.cache.store(&data)?;
        lock.insert(locked);
        Ok(Outcome::Resolved)
    }

    fn resolve_from_index(&mut self, chart: &RemoteChart) -> Result<(LockedChart, Vec<u8>)> {
        if !self.indexes.contains_key(&chart.repository) {
            let index = repository::fetch_index(self.connection(chart)?, &chart.repository)?;
            self.indexes.insert(chart.repository.clone(), index);
        }
        let entry = repository::choose(&self.indexes[&chart.repository], chart)?.clone();
        let Some(url) = entry.urls.first() else {
            return Err(Error::new(format!(
                "chart {} {}: the repository's index gives no URL",
                chart.describe(),
                entry.version
            ))
            .with_help(format!("repository {}", chart.repository)));
        };
        let url = repository::archive_url(&chart.repository, url);
        let data = self.download(chart, &url)?;
        let digest = sha256_digest(&data);
        if let Some(expected) = entry.digest.as_deref().filter(|d| !d.is_empty())
            && digest.trim_start_matches("sha256:") != expected.trim_start_matches("sha256:")
        {
            return Err(Error::new(format!(
                "{url} has digest {digest}, but the repository's index says sha256:{expected}"
            ))
            .with_help(format!(
                "repository {}: its index and its archive disagree; nothing was locked",
                chart.repository
            )));
        }
        let mut locked = LockedChart {
            repository: chart.repository.clone(),
            name: chart.name.clone(),
            constraint: chart.version.clone(),
            version: entry.version.clone(),
            signed_by: None,
            url,
            digest,
            required_by: None,
        };
        locked.signed_by = self.signature(chart, &locked)?;
        Ok((locked, data))
    }

    /// With `keyring` (`trust`), the keys the provenance files of the charts of its repositories
    /// (`verify: true`) are checked against.
    pub fn trust(&mut self, keyring: &str, keys: weaver_verify::Keyring) {
        self.keyrings.insert(keyring.to_string(), keys);
    }

    /// With `path` (`trust_cosign`), the cosign public keys the charts of its `oci://`
    /// registries (`verify: true`, `publicKeyRef`) are checked against.
    pub fn trust_cosign(&mut self, path: &str, keys: CosignKeys) {
        self.cosign_keys.insert(path.to_string(), keys);
    }

    /// Who signed `chart`'s archive, pinned as `locked`, when its repository says `verify:
    /// true`: an OCI chart's manifest by cosign ([`Fetcher::cosign`]), or the provenance file
    /// beside the archive or, for an OCI chart, a layer of its manifest
    /// ([`Fetcher::provenance`]).
    fn signature(&mut self, chart: &RemoteChart, locked: &LockedChart) -> Result<Option<String>> {
        match &chart.keys {
            None => Ok(None),
            Some(ChartKeys::Cosign(path)) => self.cosign(chart, path, &locked.url, &locked.digest).map(Some),
            Some(ChartKeys::Keyring(path)) => self.provenance(chart, path, locked).map(Some),
        }
    }

    /// The manifest digest an OCI chart's pin names at the end of its URL (`oci://…/web@sha256:…`),
    /// and its chart layer, which must be the archive pinned (`digest`): so that what a
    /// signature of the manifest vouches for is the archive rendered.
    fn pinned_manifest(&mut self, chart: &RemoteChart, url: &str, digest: &str) -> Result<(String, oci::ChartLayers)> {
        let manifest = url.rsplit_once('@').map_or("", |(_, digest)| digest).to_string();
        if !is_sha256_digest(&manifest) {
            return Err(Error::new(format!("{url} names no manifest by its digest"))
                .with_help(format!("{LOCK_FILE} was changed by hand: `weaver charts lock --update` pins it again")));
        }
        let layers = oci::chart_layers(self.connection(chart)?, chart, &manifest)?;
        if layers.chart != digest {
            return Err(Error::new(format!(
                "{url} is refused: its chart layer is {}, but {LOCK_FILE} pins {digest}",
                layers.chart
            ))
            .with_help(format!("{LOCK_FILE} was changed by hand: `weaver charts lock --update` pins it again")));
        }
        Ok((manifest, layers))
    }

    /// Who of the registry's `publicKeyRef` signed the OCI chart's manifest, named by digest at
    /// the end of `url` (`oci://…/web@sha256:…`), as `cosign verify --key` checks it; that
    /// manifest's chart layer must be `digest`, the archive pinned, so that a signed manifest
    /// vouches for no other blob.
    fn cosign(&mut self, chart: &RemoteChart, path: &str, url: &str, digest: &str) -> Result<String> {
        let Some(keys) = self.cosign_keys.get(path).cloned() else {
            return Err(Error::new(format!("public key {path} was not read")));
        };
        let (manifest, _) = self.pinned_manifest(chart, url, digest)?;
        let connection = self.connection(chart)?;
        let (base, repository) = oci::location(chart);
        let mut get = |path: &str, accept: &str, bound: u64| -> Result<crate::signatures::Part> {
            let url = format!("{base}/v2/{repository}/{path}");
            let response = connection.send_bounded(http::Method::Get, &url, accept, &[], bound, None)?;
            connection.found(&url, response)
        };
        match crate::signatures::check(&mut get, &manifest, &keys)? {
            Ok(signer) => Ok(signer.to_string()),
            Err(refusal) => Err(Error::new(format!("{url} is refused: {refusal}")).with_help(format!(
                "repository {} says `verify: true`: {path} lists the keys whose charts are taken (`cosign sign --key` signs a chart's manifest); nothing was locked",
                chart.repository
            ))),
        }
    }

    /// Who signed the provenance file of `chart`'s archive, pinned as `locked`, against the
    /// keyring at `keyring`, as `helm --verify` checks one. A chart repository's is fetched
    /// from `<url>.prov`; an OCI chart's is the provenance layer `helm push` uploads with it, of
    /// the pinned manifest. The file vouches for the archive by its file name: the URL path's
    /// last part, or for an OCI chart `<name>-<version>.tgz`, as `helm pull --verify` names it.
    fn provenance(&mut self, chart: &RemoteChart, keyring: &str, locked: &LockedChart) -> Result<String> {
        if !self.keyrings.contains_key(keyring) {
            return Err(Error::new(format!("keyring {keyring} was not read")));
        }
        let url = &locked.url;
        let (name, body) = if chart.is_oci() {
            let (_, layers) = self.pinned_manifest(chart, url, &locked.digest)?;
            let Some((layer, size)) = layers.provenance else {
                return Err(Error::new(format!("{url} is refused: its manifest has no provenance layer")).with_help(
                    format!(
                        "repository {} says `verify: true` with a keyring: push each chart with its provenance file beside it (`helm package --sign`, then `helm push`), or check cosign signatures instead (`publicKeyRef`); nothing was locked",
                        chart.repository
                    ),
                ));
            };
            if size > MAX_PROVENANCE {
                return Err(Error::new(format!(
                    "{url} is refused: its provenance layer says it is {size} bytes, and no provenance file is over {} KiB",
                    MAX_PROVENANCE >> 10
                )));
            }
            let body = oci::blob_within(self.connection(chart)?, chart, &layer, MAX_PROVENANCE)?;
            (format!("{}-{}.tgz", chart.name, locked.version), body)
        } else {
            let prov_url = format!("{url}.prov");
            let connection = self.connection(chart)?;
            let accept = "application/octet-stream, text/plain, */*";
            let response = connection.send_bounded(http::Method::Get, &prov_url, accept, &[], MAX_PROVENANCE, None)?;
            if response.over_limit {
                return Err(Error::new(format!(
                    "{prov_url} is larger than {} KiB, which no provenance file is: nothing was locked",
                    MAX_PROVENANCE >> 10
                )));
            }
            if response.status == 404 {
                return Err(connection.status_error(&prov_url, &response).with_help(format!(
                    "repository {} says `verify: true`: each archive needs its provenance file (`helm package --sign`) beside it",
                    chart.repository
                )));
            }
            if response.status != 200 {
                return Err(connection.status_error(&prov_url, &response));
            }
            // The archive's file name, as helm takes it: the URL path's last part.
            let path = url.split(['?', '#']).next().unwrap_or(url);
            (path.rsplit('/').next().unwrap_or(path).to_string(), response.body)
        };
        let keys = &self.keyrings[keyring];
        let text =
            String::from_utf8(body).map_err(|_| Error::new(format!("{url}: its provenance file is not text")))?;
        let signer = weaver_verify::check_provenance(keys, &text, &name, &locked.digest).map_err(|why| {
            Error::new(format!("{url} is refused: {why}"))
                .with_help(format!("keyring {keyring} lists the keys whose charts are taken; nothing was locked"))
        })?;
        Ok(signer.to_string())
    }

    fn download(&mut self, chart: &RemoteChart, url: &str) -> Result<Vec<u8>> {
        let connection = self.connection(chart)?;
        let response = connection.get(url, "application/gzip, application/octet-stream, */*")?;
        if response.status != 200 {
            return Err(connection.status_error(url, &response));
        }
        Ok(response.body)
    }

    /// Puts the archive `lock` pins for `chart` in the cache, unless it is there intact; a
    /// download whose digest is not the pinned one is an error and is not stored.
    pub fn fetch(&mut self, lock: &Lock, chart: &RemoteChart) -> Result<Outcome> {
        let locked = pinned(lock, "", chart)?.clone();
        self.pull(chart, &locked, false)
    }

    /// [`Fetcher::fetch`], downloading the archive even when the cache has it: what shows that
    /// this fetcher's credentials may read it.
    pub fn fetch_again(&mut self, lock: &Lock, chart: &RemoteChart) -> Result<Outcome> {
        let locked = pinned(lock, "", chart)?.clone();
        self.pull(chart, &locked, true)
    }

    /// [`Fetcher::fetch`] of the pin `locked`; `again`: [`Fetcher::fetch_again`].
    fn pull(&mut self, chart: &RemoteChart, locked: &LockedChart, again: bool) -> Result<Outcome> {
        if !again && let Some(Ok(_)) = self.cache.read(&locked.digest)? {
            return Ok(Outcome::Cached);
        }
        // A pull checks the provenance file again, as `helm pull --verify` does, where the
        // keyring was read (`charts fetch`); the controller's pulls, which read no keyring, take
        // the archive the lock pins by its digest, the check being the lock's.
        let keys_read = match &chart.keys {
            None => false,
            Some(ChartKeys::Keyring(path)) => self.keyrings.contains_key(path),
            Some(ChartKeys::Cosign(path)) => self.cosign_keys.contains_key(path),
        };
        if locked.signed_by.is_some() && keys_read {
            self.signature(chart, locked)?;
        }
        let data = if chart.is_oci() {
            oci::blob(self.connection(chart)?, chart, &locked.digest)?
        } else {
            self.download(chart, &locked.url)?
        };
        let actual = sha256_digest(&data);
        if actual != locked.digest {
            return Err(Error::new(format!(
                "chart {} {}: {} has digest {actual}, but {LOCK_FILE} pins {}",
                chart.describe(),
                locked.version,
                locked.url,
                locked.digest
            ))
            .with_help("the repository serves other content under this version: nothing was cached; check it, then `weaver charts lock --update` to pin what it serves now"));
        }
        self.cache.store(&data)?;
        Ok(Outcome::Pulled)
    }
}
