//! Image registries, as `imageUpdates:` reads them: a repository's tags, a tag's digest, and an
//! image's creation time, with manners a shared registry asks for. One [`Registries`] keeps, per
//! repository, its tag list page by page with each page's `ETag` (an unchanged repository costs
//! one `304 Not Modified` per page, no body), per tag the digest it was seen at and per digest the
//! config's creation time (a config is fetched once, for a tag not seen before); a `429` or `503`
//! is retried after its `Retry-After`; at most [`PER_REGISTRY`] requests are in flight to one
//! registry at a time. Requests go through the chart registries' [`Connection`] (credentials,
//! Bearer token flow, `Link` pagination). A [`Check`] bounds what one check reads and how long
//! it takes ([`RegistryLimits`]): a registry, which a tenant's environment file chooses, is not
//! trusted to end its lists or its waits.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::charts::http::{Connection, Machine, Method, Response, shown};
use crate::charts::oci::{Deadline, TagList, Tally, shown_tag};
use crate::charts::sha256_digest;
pub use crate::registry_limits::RegistryLimits;
use crate::signatures;
use weaver_core::error::{Error, Result};
use weaver_verify::Signer;
use weaver_verify::cosign::{CosignKeys, CosignRefusal, signature_tag};

/// Requests in flight to one registry at most: registries rate-limit by client.
pub const PER_REGISTRY: usize = 4;
/// Tries of a request answered `429` or `503` before the error is the registry's.
const ATTEMPTS: u32 = 5;
/// The longest wait a `Retry-After` is honoured for; longer, the request fails now (an interval
/// later tries again).
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Most digests and tags remembered: past it the oldest half goes (memory stays bounded
/// whatever the number of tags).
const REMEMBERED: usize = 100_000;
/// Most bytes of a manifest or an image config: containers/image's bounds (Podman, CRI-O and
/// skopeo read them within 4 MiB), so that nothing a runtime pulls is refused.
const MAX_MANIFEST: u64 = 4 << 20;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// An image repository located: `registry.example/shop/web` is `https://registry.example`,
/// `shop/web`; Docker Hub's short names as docker reads them (`nginx` is
/// `registry-1.docker.io`, `library/nginx`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRepository {
    /// `host[:port]`, as credentials are found by (`docker.io` for Docker Hub).
    pub host: String,
    /// `https://host[:port]` (or `http://`).
    pub base: String,
    pub path: String,
}

impl ImageRepository {
    pub fn locate(image: &str, plain_http: bool) -> ImageRepository {
        let (first, rest) = image.split_once('/').unwrap_or(("", image));
        let is_host = first.contains(['.', ':']) || first == "localhost";
        let (host, path) = match (is_host, first.is_empty()) {
            (true, _) => (first.to_string(), rest.to_string()),
            (false, true) => ("docker.io".to_string(), format!("library/{rest}")),
            (false, false) => ("docker.io".to_string(), image.to_string()),
        };
        let address = if host == "docker.io" { "registry-1.docker.io" } else { host.as_str() };
        let base = format!("{}://{address}", if plain_http { "http" } else { "https" });
        ImageRepository { host, base, path }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.base, self.path)
    }
}

/// One check of registries ([`Registries::check`]): when it must end, and what its tag lists
/// hold together. At its end (dropped), the tag lists of repositories it did not ask for are
/// forgotten: the cache holds at most one check's lists, however many repositories an
/// EnvironmentSync named over its life.
pub struct Check<'a> {
    registries: &'a Registries,
    deadline: Deadline,
    totals: Tally,
    /// The keys of the repositories whose tags it asked for.
    listed: Mutex<HashSet<String>>,
}

impl Drop for Check<'_> {
    fn drop(&mut self) {
        let listed = lock(&self.listed);
        lock(&self.registries.tag_lists).retain(|key, _| listed.contains(key));
    }
}

/// A repository's tags, and whether the registry said they had not changed since it was last asked.
#[derive(Debug, Clone)]
pub struct Tags {
    pub list: Arc<Vec<String>>,
    pub unchanged: bool,
    /// Tags left out as outside the OCI tag grammar, and the first of them, escaped.
    pub invalid: usize,
    pub invalid_example: Option<String>,
}

/// A repository's pages as last answered, and all their tags.
type Listed = (Arc<Vec<Page>>, Arc<Vec<String>>);

/// One page of a tag list as last answered: its tags are a range of the repository's list.
#[derive(Clone)]
struct Page {
    url: String,
    etag: Option<String>,
    tags: std::ops::Range<usize>,
    next: Option<String>,
    /// Of its body.
    bytes: u64,
    invalid: usize,
    invalid_example: Option<String>,
}

/// A config's `created`, and `os`/`architecture` that a single-platform manifest has.
#[derive(Deserialize)]
struct Config {
    created: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    manifests: Vec<Entry>,
    config: Option<Descriptor>,
}

#[derive(Deserialize)]
struct Entry {
    digest: String,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

/// Per registry, how many requests are in flight.
#[derive(Default)]
struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.used.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

/// The registries of a run (the CLI) or a process (the controller). `Send + Sync`.
pub struct Registries {
    machine: Machine,
    /// Where the credentials come from, for refusals: `the docker and helm registry configs`.
    credentials_from: String,
    connections: Mutex<HashMap<String, Arc<Mutex<Connection>>>>,
    /// One agent (pool of connections) per registry, shared by its repositories' connections.
    agents: Mutex<HashMap<String, ureq::Agent>>,
    /// Per repository the last check asked for, its pages as last answered and all their tags.
    tag_lists: Mutex<HashMap<String, Listed>>,
    /// `repository key/tag` → the digest it was seen at.
    tags_seen: Mutex<HashMap<String, String>>,
    /// `repository key@digest/platform` → the config's creation time.
    created: Mutex<HashMap<String, Option<jiff::Timestamp>>>,
    /// `repository key@digest keys` → who signed it, once a signature held: a digest's content
    /// never changes, nor does a signature that held over it.
    signed: Mutex<HashMap<String, Signer>>,
    slots: Mutex<HashMap<String, Arc<Slots>>>,
    requests: AtomicU64,
}

impl Registries {
    /// Registries asked with `machine`'s credentials; `credentials_from` says where they come
    /// from, in refusals (never what they are).
    pub fn new(machine: Machine, credentials_from: impl Into<String>) -> Registries {
        Registries {
            machine,
            credentials_from: credentials_from.into(),
            connections: Mutex::default(),
            agents: Mutex::default(),
            tag_lists: Mutex::default(),
            tags_seen: Mutex::default(),
            created: Mutex::default(),
            signed: Mutex::default(),
            slots: Mutex::default(),
            requests: AtomicU64::new(0),
        }
    }

    /// How many requests were sent (retries and token requests aside).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A check: what it reads and how long it takes bounded by the machine's limits.
    pub fn check(&self) -> Check<'_> {
        let limits = self.machine.registry_limits;
        Check {
            registries: self,
            deadline: Deadline::new(limits.check_time, "the check's time"),
            totals: Tally::new(limits.check, "check", "WEAVER_REGISTRY_CHECK"),
            listed: Mutex::default(),
        }
    }

    /// The repository's tags, every page, revalidated with each page's `ETag`, and whether
    /// every page was answered unchanged (`304`).
    pub fn tags(&self, repository: &ImageRepository, check: &Check) -> Result<Tags> {
        let key = repository.key();
        lock(&check.listed).insert(key.clone());
        let before = lock(&self.tag_lists).get(&key).cloned();
        let before_pages: HashMap<&str, &Page> =
            before.iter().flat_map(|(pages, _)| pages.iter().map(|p| (p.url.as_str(), p))).collect();
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let mut list = TagList::new(self.machine.registry_limits.repository, Some(&check.totals));
        let mut pages: Vec<Page> = Vec::new();
        let mut asked = HashSet::new();
        // Tags listed so far: while every page is unchanged, none is copied.
        let mut listed = 0;
        let mut unchanged = true;
        let mut next = Some(format!("{}/v2/{}/tags/list", repository.base, repository.path));
        while let Some(url) = next.take() {
            if !asked.insert(url.clone()) {
                return Err(connection.failed(&url, "the registry's tag list links back to a page it already gave"));
            }
            let cached = before_pages.get(url.as_str()).copied();
            let condition: Vec<(&str, String)> =
                cached.and_then(|p| p.etag.clone()).map(|etag| ("If-None-Match", etag)).into_iter().collect();
            let max_body = list.max_body(&connection, &url)?;
            let response = self.send(
                check,
                repository,
                &mut connection,
                Method::Get,
                &url,
                "application/json",
                &condition,
                Some(max_body),
            )?;
            let page = match (response.status, cached, &before) {
                (304, Some(cached), Some((_, before_tags))) => {
                    let tags = &before_tags[cached.tags.clone()];
                    list.reuse(&connection, &url, tags, cached.bytes, !unchanged)?;
                    Page { tags: listed..listed + tags.len(), ..cached.clone() }
                }
                (200, _, _) => {
                    if unchanged && let Some((_, before_tags)) = &before {
                        // The pages before were unchanged: their tags are copied now.
                        list.tags.extend(pages.iter().flat_map(|p| before_tags[p.tags.clone()].iter().cloned()));
                    }
                    unchanged = false;
                    let invalid = list.invalid;
                    list.page(&connection, &url, &response)?;
                    Page {
                        url: url.clone(),
                        etag: response.etag,
                        tags: listed..list.tags.len(),
                        next: response.next,
                        bytes: response.body.len() as u64,
                        invalid: list.invalid - invalid,
                        invalid_example: list.invalid_example.clone().filter(|_| list.invalid > invalid),
                    }
                }
                _ => return Err(refused(&connection, &url, &response, repository)),
            };
            listed = page.tags.end;
            next = page.next.clone();
            pages.push(page);
        }
        let invalid = pages.iter().map(|p| p.invalid).sum();
        let invalid_example = pages.iter().find_map(|p| p.invalid_example.clone());
        // Unchanged, the list made last time serves: an interval copies no tag.
        let tags = match (&before, unchanged) {
            (Some((_, tags)), true) => tags.clone(),
            _ => Arc::new(list.tags),
        };
        lock(&self.tag_lists).insert(key, (Arc::new(pages), tags.clone()));
        Ok(Tags { list: tags, unchanged, invalid, invalid_example })
    }

    /// The digest `tag` pointed at when last asked, if the repository's tag list is unchanged
    /// since (`unchanged`): a tag that is not followed by digest is not asked again every
    /// interval; else [`Registries::digest`].
    pub fn digest_unless_unchanged(
        &self,
        repository: &ImageRepository,
        tag: &str,
        unchanged: bool,
        check: &Check,
    ) -> Result<String> {
        if unchanged && let Some(digest) = lock(&self.tags_seen).get(&format!("{}/{tag}", repository.key())) {
            return Ok(digest.clone());
        }
        self.digest(repository, tag, check)
    }

    /// The digest `tag` points at now, asked of the registry (`HEAD`; a `GET` when the answer
    /// names none).
    pub fn digest(&self, repository: &ImageRepository, tag: &str, check: &Check) -> Result<String> {
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let url = format!("{}/v2/{}/manifests/{tag}", repository.base, repository.path);
        let head = self.send(check, repository, &mut connection, Method::Head, &url, MANIFEST_TYPES, &[], None)?;
        let digest = match (head.status, head.digest.clone()) {
            (200, Some(digest)) => digest,
            (200, None) => {
                let got =
                    self.send(check, repository, &mut connection, Method::Get, &url, MANIFEST_TYPES, &[], None)?;
                if got.status != 200 {
                    return Err(refused(&connection, &url, &got, repository));
                }
                sha256_digest(&got.body)
            }
            (_, _) => return Err(refused(&connection, &url, &head, repository)),
        };
        // Written into a pin after the tag's `@`: only a digest may be.
        if !weaver_project::chart::is_sha256_digest(&digest) {
            let why = format!("its digest `{}` is not a sha256 digest", shown_tag(&digest));
            return Err(connection.failed(&url, &why));
        }
        self.remember(&self.tags_seen, format!("{}/{tag}", repository.key()), digest.clone());
        Ok(digest)
    }

    /// When the image of `tag` for `platform` was built (its config's `created`), None when
    /// its config says nothing. A tag seen before is not asked again, nor a digest's config.
    pub fn created(
        &self,
        repository: &ImageRepository,
        tag: &str,
        platform: &str,
        check: &Check,
    ) -> Result<Option<jiff::Timestamp>> {
        let seen = lock(&self.tags_seen).get(&format!("{}/{tag}", repository.key())).cloned();
        let digest = match seen {
            Some(digest) => digest,
            None => self.digest(repository, tag, check)?,
        };
        self.created_at(repository, &digest, tag, platform, check)
    }

    /// [`Registries::created`] of the image `digest` (`tag`'s, as messages name it).
    pub fn created_at(
        &self,
        repository: &ImageRepository,
        digest: &str,
        tag: &str,
        platform: &str,
        check: &Check,
    ) -> Result<Option<jiff::Timestamp>> {
        let digest = digest.to_string();
        let key = format!("{}@{digest}/{platform}", repository.key());
        if let Some(created) = lock(&self.created).get(&key) {
            return Ok(*created);
        }
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let mut manifest = self.manifest(check, repository, &mut connection, &digest)?;
        if !manifest.manifests.is_empty() {
            let wanted: Vec<&str> = platform.split('/').collect();
            let found = manifest.manifests.iter().find(|entry| {
                entry.platform.as_ref().is_some_and(|p| {
                    p.os == wanted[0]
                        && p.architecture == wanted[1]
                        && wanted.get(2).is_none_or(|v| p.variant.as_deref() == Some(*v))
                })
            });
            let Some(entry) = found else {
                return Err(Error::new(format!(
                    "image {}/{}:{tag} has no image for platform {platform}",
                    repository.host, repository.path
                ))
                .with_help("set `platform:` of the imageUpdates entry to one the image is built for"));
            };
            manifest = self.manifest(check, repository, &mut connection, &entry.digest.clone())?;
        }
        let created = match manifest.config {
            None => None,
            Some(config) => {
                let url = format!("{}/v2/{}/blobs/{}", repository.base, repository.path, config.digest);
                let accept = "application/octet-stream";
                let response = self.send(check, repository, &mut connection, Method::Get, &url, accept, &[], None)?;
                if response.status != 200 {
                    return Err(refused(&connection, &url, &response, repository));
                }
                if sha256_digest(&response.body) != config.digest {
                    return Err(connection.failed(&url, "the config's content is not its digest's"));
                }
                let config: Config = serde_json::from_slice(&response.body)
                    .map_err(|e| connection.failed(&url, &format!("not an image config: {e}")))?;
                config.created.and_then(|text| text.parse::<jiff::Timestamp>().ok())
            }
        };
        self.remember(&self.created, key, created);
        Ok(created)
    }

    /// Who of `keys` signed the image `digest` (cosign's format, [`signatures`]), or why none
    /// did. `listed` is the repository's tag list as this check read it: a digest whose
    /// signature tag it lacks is unsigned without a request. A signature that held is not
    /// asked again.
    pub fn signature(
        &self,
        repository: &ImageRepository,
        digest: &str,
        keys: &CosignKeys,
        listed: &[String],
        check: &Check,
    ) -> Result<std::result::Result<Signer, CosignRefusal>> {
        let key = format!("{}@{digest} {}", repository.key(), keys.id());
        if let Some(signer) = lock(&self.signed).get(&key) {
            return Ok(Ok(signer.clone()));
        }
        let tag = signature_tag(digest);
        if !listed.contains(&tag) {
            return Ok(Err(CosignRefusal::Unsigned));
        }
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let mut get = |path: &str, accept: &str, bound: u64| -> Result<signatures::Part> {
            let url = format!("{}/v2/{}/{path}", repository.base, repository.path);
            let response =
                self.send(check, repository, &mut connection, Method::Get, &url, accept, &[], Some(bound))?;
            connection.found(&url, response)
        };
        let verdict = signatures::check(&mut get, digest, keys)?;
        if let Ok(signer) = &verdict {
            self.remember(&self.signed, key, signer.clone());
        }
        Ok(verdict)
    }

    fn manifest(
        &self,
        check: &Check,
        repository: &ImageRepository,
        connection: &mut Connection,
        digest: &str,
    ) -> Result<Manifest> {
        let url = format!("{}/v2/{}/manifests/{digest}", repository.base, repository.path);
        let response = self.send(check, repository, connection, Method::Get, &url, MANIFEST_TYPES, &[], None)?;
        if response.status != 200 {
            return Err(refused(connection, &url, &response, repository));
        }
        if sha256_digest(&response.body) != digest {
            return Err(connection.failed(&url, "the manifest's content is not its digest's"));
        }
        serde_json::from_slice(&response.body).map_err(|e| connection.failed(&url, &format!("not a manifest: {e}")))
    }

    /// One request, within the registry's slots and the check's time, retried after a `429`
    /// or `503`'s `Retry-After`. A body over `bound` bytes (a tag list's page, a signature's
    /// parts) is not read, and the response says so for the caller's message; without a bound,
    /// any body, a manifest or a config, over [`MAX_MANIFEST`] is an error, as what is read of
    /// it would be taken for the whole.
    #[expect(clippy::too_many_arguments, reason = "one request's parts, as Connection::send_bounded takes them")]
    fn send(
        &self,
        check: &Check,
        repository: &ImageRepository,
        connection: &mut Connection,
        method: Method<'_>,
        url: &str,
        accept: &str,
        extra: &[(&str, String)],
        bound: Option<u64>,
    ) -> Result<Response> {
        let max_body = bound.unwrap_or(MAX_MANIFEST);
        let slots = lock(&self.slots).entry(repository.host.clone()).or_default().clone();
        let out_of_time = || check.deadline.passed(&repository.host, url, &repository.path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = {
                let _slot = acquire(&slots);
                check.deadline.within(out_of_time, |left| {
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    connection.send_bounded(method, url, accept, extra, max_body, Some(left))
                })?
            };
            if response.over_limit && bound.is_none() {
                return Err(Error::new(format!(
                    "registry {} answered {} with more than {MAX_MANIFEST} bytes",
                    repository.host,
                    shown(url)
                ))
                .with_help(format!(
                    "repository `{}`: a manifest or an image config is read up to {MAX_MANIFEST} bytes (4 MiB, as Podman and CRI-O read them), and this one was not used",
                    repository.path
                )));
            }
            if !matches!(response.status, 429 | 503) {
                return Ok(response);
            }
            // Without a Retry-After: 1, 2, 4, 8 s.
            let wait = response.retry_after.unwrap_or_else(|| {
                weaver_net::retry::exponential(Duration::from_secs(1), attempt, Duration::from_secs(64))
            });
            let left = check.deadline.left().unwrap_or_default();
            let why = match () {
                _ if attempt == ATTEMPTS => format!("it was asked {ATTEMPTS} times, each after the wait it asked for"),
                _ if wait > LONGEST_WAIT => format!(
                    "it asked to wait {} s (Retry-After), more than the {} s weaver waits: not asked again",
                    wait.as_secs(),
                    LONGEST_WAIT.as_secs()
                ),
                _ if wait >= left => format!(
                    "it asked to wait {} s, more than the {} s left of the check's time (WEAVER_REGISTRY_CHECK_SECONDS): not asked again",
                    wait.as_secs(),
                    left.as_secs()
                ),
                _ => {
                    std::thread::sleep(wait);
                    continue;
                }
            };
            let error = connection.status_error(url, &response);
            let times = if attempt == 1 { "once".to_string() } else { format!("{attempt} times") };
            return Err(Error::new(error.message)
                .with_help(format!("registry {} is limiting requests (asked {times}): {why}", repository.host)));
        }
    }

    fn connection(&self, repository: &ImageRepository) -> Result<Arc<Mutex<Connection>>> {
        let key = repository.key();
        if let Some(found) = lock(&self.connections).get(&key) {
            return Ok(found.clone());
        }
        let name = format!("oci://{}/{}", repository.host, repository.path);
        let opened = Connection::open_sharing(&self.machine, &name, None, &repository.base, Some(&self.agents))?
            .with_refusal_help(format!(
                "registry {} refused the request: check its credentials in {}",
                repository.host, self.credentials_from
            ));
        let connection = Arc::new(Mutex::new(opened));
        Ok(lock(&self.connections).entry(key).or_insert(connection).clone())
    }

    fn remember<V>(&self, map: &Mutex<HashMap<String, V>>, key: String, value: V) {
        let mut map = lock(map);
        if map.len() >= REMEMBERED {
            let drop: Vec<String> = map.keys().take(REMEMBERED / 2).cloned().collect();
            for key in drop {
                map.remove(&key);
            }
        }
        map.insert(key, value);
    }
}

/// The error of a request the registry did not answer as asked (a refusal names where the
/// credentials come from, never what they are: the connection's refusal help).
fn refused(connection: &Connection, url: &str, response: &Response, repository: &ImageRepository) -> Error {
    let error = connection.status_error(url, response);
    match response.status {
        404 => Error::new(error.message)
            .with_help(format!("registry {} has no repository `{}` or no such tag", repository.host, repository.path)),
        _ => error,
    }
}

fn acquire(slots: &Slots) -> Slot<'_> {
    let mut used = lock(&slots.used);
    while *used >= PER_REGISTRY {
        used = slots.freed.wait(used).unwrap_or_else(|e| e.into_inner());
    }
    *used += 1;
    Slot(slots)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use crate::registry_limits::TagLimits;

    use weaver_test_support::http_server::{Answer, TestServer};

    /// Registries without credentials, within `limits`.
    fn registries(limits: RegistryLimits) -> Registries {
        let mut machine = Machine::anonymous();
        machine.registry_limits = limits;
        Registries::new(machine, "the tests")
    }

    fn repository(server: &TestServer, path: &str) -> ImageRepository {
        ImageRepository::locate(&format!("127.0.0.1:{}/{path}", server.port), true)
    }

    fn page(tags: &[&str], next: Option<String>) -> Answer {
        let link = next.map(|next| format!("Link: <{next}>; rel=\"next\"\r\n")).unwrap_or_default();
        ("200 OK", link, serde_json::to_vec(&serde_json::json!({"name": "shop/web", "tags": tags})).unwrap())
    }

    fn small(tags: usize, pages: usize, bytes: u64) -> RegistryLimits {
        RegistryLimits { repository: TagLimits { tags, pages, bytes }, ..RegistryLimits::default() }
    }

    #[test]
    fn unchanged_pages_are_answered_without_a_body_and_their_tags_kept_once() {
        // Two pages; the second's tags change when `changed` is set.
        let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let changing = changed.clone();
        let server = TestServer::start(move |_, request| {
            let (tags, etag, next): (&[&str], _, _) = match request.path.contains("last=") {
                false => (&["1.0.0", "1.1.0"], "\"one\"", Some("/v2/shop/web/tags/list?last=1.1.0".to_string())),
                true if changing.load(Ordering::SeqCst) => (&["2.0.0", "bad|tag"], "\"three\"", None),
                true => (&["1.2.0"], "\"two\"", None),
            };
            match request.if_none_match == etag {
                true => ("304 Not Modified", format!("ETag: {etag}\r\n"), Vec::new()),
                false => {
                    let (status, headers, body) = page(tags, next);
                    (status, format!("{headers}ETag: {etag}\r\n"), body)
                }
            }
        });
        let web = repository(&server, "shop/web");
        let registries = registries(RegistryLimits::default());
        let check = registries.check();
        let first = registries.tags(&web, &check).unwrap();
        assert_eq!(
            (first.list.as_slice(), first.unchanged),
            (&["1.0.0", "1.1.0", "1.2.0"].map(String::from)[..], false)
        );
        let again = registries.tags(&web, &check).unwrap();
        assert!(again.unchanged && Arc::ptr_eq(&first.list, &again.list), "the list made before serves");
        changed.store(true, Ordering::SeqCst);
        let third = registries.tags(&web, &check).unwrap();
        assert_eq!(*third.list, ["1.0.0", "1.1.0", "2.0.0"], "the unchanged first page's tags, then the new");
        assert_eq!((third.unchanged, third.invalid), (false, 1));
        let fourth = registries.tags(&web, &check).unwrap();
        assert_eq!((fourth.list.as_slice(), fourth.unchanged, fourth.invalid), (third.list.as_slice(), true, 1));
        let asked: Vec<String> = server.received().iter().map(|r| r.if_none_match.clone()).collect();
        assert_eq!(asked, ["", "", "\"one\"", "\"two\"", "\"one\"", "\"two\"", "\"one\"", "\"three\""]);
    }

    #[test]
    fn a_check_keeps_only_the_tag_lists_it_asked_for() {
        let server = TestServer::start(|_, request| match request.if_none_match.as_str() {
            "\"v1\"" => ("304 Not Modified", "ETag: \"v1\"\r\n".into(), Vec::new()),
            _ => {
                let (status, headers, body) = page(&["1.0.0"], None);
                (status, format!("{headers}ETag: \"v1\"\r\n"), body)
            }
        });
        let (web, api) = (repository(&server, "shop/web"), repository(&server, "shop/api"));
        let registries = registries(RegistryLimits::default());
        let listed = |registries: &Registries| {
            let mut keys: Vec<String> = lock(&registries.tag_lists).keys().cloned().collect();
            keys.sort();
            keys
        };
        {
            let check = registries.check();
            registries.tags(&web, &check).unwrap();
            registries.tags(&api, &check).unwrap();
        }
        assert_eq!(listed(&registries), [api.key(), web.key()]);
        {
            let check = registries.check();
            assert!(registries.tags(&web, &check).unwrap().unchanged, "a list asked again is revalidated");
        }
        assert_eq!(listed(&registries), [web.key()], "the list not asked for is forgotten");
        let check = registries.check();
        assert!(!registries.tags(&api, &check).unwrap().unchanged, "asked again, it is read whole");
    }

    #[test]
    fn an_endless_chain_of_pages_stops_at_the_page_bound() {
        // Page i links to i + 1 (for 1,000 pages: a test must end on the code before the bound).
        let server = TestServer::start(|_, request| {
            let n: usize = request.path.split("page=").nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            match n < 1000 {
                true => page(&["1.0.0"], Some(format!("/v2/shop/web/tags/list?page={}", n + 1))),
                false => ("500 Internal Server Error", String::new(), Vec::new()),
            }
        });
        let registries = registries(small(1_000_000, 50, 1 << 30));
        let err = registries.tags(&repository(&server, "shop/web"), &registries.check()).unwrap_err();
        assert!(err.message.contains("more than 50 pages (the limit per repository)"), "{err}");
        assert!(err.message.contains(&format!("127.0.0.1:{}", server.port)), "{err}");
        let help = err.help.unwrap();
        assert!(help.contains("WEAVER_REGISTRY_MAX_PAGES") && help.contains("shop/web"), "{help}");
        assert_eq!(server.received().len(), 51, "the page over the bound is asked, no more");
    }

    #[test]
    fn a_huge_page_or_too_many_tags_stop_at_their_bounds() {
        let tags: Vec<String> = (0..200_000).map(|n| format!("1.0.{n}")).collect();
        let body = serde_json::to_vec(&serde_json::json!({"tags": tags})).unwrap();
        let server = TestServer::start(move |_, _| ("200 OK", String::new(), body.clone()));
        let web = repository(&server, "shop/web");
        let registries = registries(small(1_000_000, 10, 1 << 20));
        let err = registries.tags(&web, &registries.check()).unwrap_err();
        assert!(err.message.contains(&format!("more than {} bytes", 1 << 20)), "{err}");
        assert!(err.help.unwrap().contains("WEAVER_REGISTRY_MAX_BYTES"));
        let registries = super::tests::registries(small(1000, 10, 1 << 30));
        let err = registries.tags(&web, &registries.check()).unwrap_err();
        assert!(err.message.contains("more than 1000 tags"), "{err}");
        // Within the repository's bounds, the check's: two repositories of 200,000 tags.
        let limits = RegistryLimits {
            check: TagLimits { tags: 300_000, pages: 10, bytes: 1 << 30 },
            ..RegistryLimits::default()
        };
        let registries = super::tests::registries(limits);
        let check = registries.check();
        assert_eq!(registries.tags(&web, &check).unwrap().list.len(), 200_000);
        let err = registries.tags(&repository(&server, "shop/api"), &check).unwrap_err();
        assert!(err.message.contains("more than 300000 tags (the limit per check)"), "{err}");
        assert!(err.help.unwrap().contains("WEAVER_REGISTRY_CHECK_MAX_TAGS"));
    }

    #[test]
    fn a_registry_s_waits_are_bounded_by_the_check_s_time() {
        let wait = TestServer::start(|_, request| match request.path.contains("long") {
            true => ("429 Too Many Requests", "Retry-After: 999999\r\n".into(), Vec::new()),
            false => ("429 Too Many Requests", "Retry-After: 5\r\n".into(), Vec::new()),
        });
        let limits = RegistryLimits { check_time: Duration::from_secs(1), ..RegistryLimits::default() };
        let registries = registries(limits);
        let started = Instant::now();
        let err = registries.tags(&repository(&wait, "long"), &registries.check()).unwrap_err();
        let help = err.help.unwrap();
        assert!(help.contains("(asked once): it asked to wait 999999 s"), "{help}");
        assert!(!help.contains("5 times"), "{help}");
        let err = registries.tags(&repository(&wait, "shop/web"), &registries.check()).unwrap_err();
        let help = err.help.unwrap();
        assert!(
            help.contains("it asked to wait 5 s, more than the ") && help.contains(" s left of the check's time"),
            "{help}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "no wait the check cannot afford");
        // A registry that answers slowly is cut at the check's time.
        let slow = TestServer::start(|_, _| {
            std::thread::sleep(Duration::from_secs(20));
            page(&["1.0.0"], None)
        });
        let started = Instant::now();
        let err = registries.tags(&repository(&slow, "shop/web"), &registries.check()).unwrap_err();
        assert!(err.message.contains("within the check's time (1 s)"), "{err}");
        assert!(err.help.unwrap().contains("WEAVER_REGISTRY_CHECK_SECONDS"));
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn tags_outside_the_oci_grammar_are_left_out_and_shown_escaped() {
        let server = TestServer::start(|_, request| match request.path.contains("/manifests/") {
            true => ("200 OK", "Docker-Content-Digest: sha256:abc|`x`\r\n".into(), Vec::new()),
            false => page(
                &["1.0.0", "zzz@sha256:aaaa", "", "a|b **c**", "x\u{1b}[31m\u{7}", &"9".repeat(129), "2.0.0"],
                None,
            ),
        });
        let web = repository(&server, "shop/web");
        let registries = registries(RegistryLimits::default());
        let check = registries.check();
        let tags = registries.tags(&web, &check).unwrap();
        assert_eq!(*tags.list, ["1.0.0", "2.0.0"]);
        assert_eq!((tags.invalid, tags.invalid_example.as_deref()), (5, Some("zzz@sha256:aaaa")));
        assert_eq!(shown_tag("x\u{1b}[31m\u{7}"), "x\\u{1b}[31m\\u{7}");
        // A digest that is not one is refused, not written after a tag's `@`.
        let err = registries.digest(&web, "1.0.0", &check).unwrap_err();
        assert!(err.message.contains("its digest `sha256:abc|`x`` is not a sha256 digest"), "{err}");
    }

    #[test]
    fn a_manifest_over_its_limit_is_an_error_not_the_digest_of_nothing() {
        // `1.0.0` answers HEAD without a digest; `2.0.0` names one, whose manifest is too large.
        let server = TestServer::start(|_, request| match (request.method.as_str(), request.path.as_str()) {
            ("HEAD", path) if path.ends_with("/2.0.0") => {
                ("200 OK", format!("Docker-Content-Digest: sha256:{}\r\n", "a".repeat(64)), Vec::new())
            }
            ("HEAD", _) => ("200 OK", String::new(), Vec::new()),
            _ => ("200 OK", String::new(), vec![b' '; MAX_MANIFEST as usize + 1]),
        });
        let web = repository(&server, "shop/web");
        let registries = registries(RegistryLimits::default());
        let check = registries.check();
        let digest = registries.digest(&web, "1.0.0", &check).unwrap_err();
        let created = registries.created(&web, "2.0.0", "linux/amd64", &check).unwrap_err();
        for err in [digest, created] {
            let host = format!("registry 127.0.0.1:{} answered ", server.port);
            assert!(err.message.starts_with(&host) && err.message.ends_with(" with more than 4194304 bytes"), "{err}");
            let help = err.help.unwrap();
            assert!(
                help.starts_with("repository `shop/web`: a manifest or an image config is read up to 4194304 bytes")
            );
        }
    }

    #[test]
    fn limits_are_raised_by_their_variables_and_a_bad_value_is_named() {
        let given = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
        };
        let limits = RegistryLimits::from_variables(&given(&[
            ("WEAVER_REGISTRY_MAX_TAGS", "5000000"),
            ("WEAVER_REGISTRY_CHECK_MAX_BYTES", "1073741824"),
            ("WEAVER_REGISTRY_CHECK_SECONDS", "900"),
        ]))
        .unwrap();
        assert_eq!(limits.repository, TagLimits { tags: 5_000_000, ..TagLimits::REPOSITORY });
        assert_eq!((limits.check.bytes, limits.check.tags), (1 << 30, RegistryLimits::default().check.tags));
        assert_eq!(limits.check_time, Duration::from_secs(900));
        let day = RegistryLimits::from_variables(&given(&[("WEAVER_REGISTRY_CHECK_SECONDS", "86400")])).unwrap();
        registries(day).check();
        let err = RegistryLimits::from_variables(&given(&[("WEAVER_REGISTRY_CHECK_SECONDS", "18446744073709551615")]))
            .unwrap_err();
        assert_eq!(err.message, "WEAVER_REGISTRY_CHECK_SECONDS=18446744073709551615 is more than 86400 (a day)");
        assert!(err.help.unwrap().contains("its default is 300"));
        let err = RegistryLimits::from_variables(&given(&[("WEAVER_REGISTRY_MAX_PAGES", "ten\u{1b}")])).unwrap_err();
        assert_eq!(err.message, "WEAVER_REGISTRY_MAX_PAGES=ten\\u{1b} is not a whole number above 0");
        assert!(err.help.unwrap().contains("its default is 10000"));
    }

    #[test]
    fn repositories_are_located_as_docker_reads_them() {
        let at = |image: &str| {
            let r = ImageRepository::locate(image, false);
            (r.host, r.base, r.path)
        };
        assert_eq!(at("nginx"), ("docker.io".into(), "https://registry-1.docker.io".into(), "library/nginx".into()));
        assert_eq!(
            at("bitnami/redis"),
            ("docker.io".into(), "https://registry-1.docker.io".into(), "bitnami/redis".into())
        );
        assert_eq!(at("ghcr.io/org/web"), ("ghcr.io".into(), "https://ghcr.io".into(), "org/web".into()));
        assert_eq!(at("localhost/web"), ("localhost".into(), "https://localhost".into(), "web".into()));
        let local = ImageRepository::locate("127.0.0.1:5000/shop/web", true);
        assert_eq!((local.base.as_str(), local.path.as_str()), ("http://127.0.0.1:5000", "shop/web"));
    }
}
