//! Image registries, as `imageUpdates:` reads them: a repository's tags, a tag's digest, and an
//! image's creation time, with manners a shared registry asks for. One [`Registries`] keeps, per
//! repository, its tag list page by page with each page's `ETag` (an unchanged repository costs
//! one `304 Not Modified` per page, no body), per tag the digest it was seen at and per digest the
//! config's creation time (a config is fetched once, for a tag not seen before); a `429` or `503`
//! is retried after its `Retry-After`; at most [`PER_REGISTRY`] requests are in flight to one
//! registry at a time. Requests go through the chart registries' [`Connection`] (credentials,
//! Bearer token flow, `Link` pagination).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::charts::http::{Connection, Machine, Method, Response};
use crate::charts::sha256_digest;
use weaver_core::error::{Error, Result};

/// Requests in flight to one registry at most: registries rate-limit by client.
pub const PER_REGISTRY: usize = 4;
/// Tries of a request answered `429` or `503` before the error is the registry's.
const ATTEMPTS: usize = 5;
/// The longest wait a `Retry-After` is honoured for; longer, the request fails now (an interval
/// later tries again).
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Most digests and tags remembered: past it the oldest half goes (memory stays bounded
/// whatever the number of tags).
const REMEMBERED: usize = 100_000;

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

/// A repository's tags, and whether the registry said they had not changed since it was last asked.
#[derive(Debug, Clone)]
pub struct Tags {
    pub list: Arc<Vec<String>>,
    pub unchanged: bool,
}

/// A repository's pages as last answered, and all their tags.
type Listed = (Arc<Vec<Page>>, Arc<Vec<String>>);

/// One page of a tag list as last answered.
#[derive(Clone)]
struct Page {
    url: String,
    etag: Option<String>,
    tags: Vec<String>,
    next: Option<String>,
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
    /// Per repository, its pages as last answered and all their tags.
    tag_lists: Mutex<HashMap<String, Listed>>,
    /// `repository key/tag` → the digest it was seen at.
    tags_seen: Mutex<HashMap<String, String>>,
    /// `repository key@digest/platform` → the config's creation time.
    created: Mutex<HashMap<String, Option<jiff::Timestamp>>>,
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
            slots: Mutex::default(),
            requests: AtomicU64::new(0),
        }
    }

    /// How many requests were sent (retries and token requests aside).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The repository's tags, every page, revalidated with each page's `ETag`, and whether
    /// every page was answered unchanged (`304`).
    pub fn tags(&self, repository: &ImageRepository) -> Result<Tags> {
        let key = repository.key();
        let before = lock(&self.tag_lists).get(&key).cloned();
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let mut pages: Vec<Page> = Vec::new();
        let mut unchanged = true;
        let mut next = Some(format!("{}/v2/{}/tags/list", repository.base, repository.path));
        while let Some(url) = next.take() {
            if pages.iter().any(|p| p.url == url) {
                return Err(connection.failed(&url, "the registry's tag list links back to a page it already gave"));
            }
            let cached = before.as_ref().and_then(|(pages, _)| pages.iter().find(|p| p.url == url));
            let condition: Vec<(&str, String)> =
                cached.and_then(|p| p.etag.clone()).map(|etag| ("If-None-Match", etag)).into_iter().collect();
            let response = self.send(repository, &mut connection, Method::Get, &url, "application/json", &condition)?;
            let page = match (response.status, cached) {
                (304, Some(cached)) => cached.clone(),
                (200, _) => {
                    unchanged = false;
                    let tags = crate::charts::oci::tag_page(&connection, &url, &response.body)?;
                    Page { url: url.clone(), etag: response.etag, tags, next: response.next }
                }
                _ => return Err(refused(&connection, &url, &response, repository)),
            };
            next = page.next.clone();
            pages.push(page);
        }
        // Unchanged, the list made last time serves: an interval copies no tag.
        let tags = match (&before, unchanged) {
            (Some((_, tags)), true) => tags.clone(),
            _ => Arc::new(pages.iter().flat_map(|p| p.tags.iter().cloned()).collect()),
        };
        lock(&self.tag_lists).insert(key, (Arc::new(pages), tags.clone()));
        Ok(Tags { list: tags, unchanged })
    }

    /// The digest `tag` pointed at when last asked, if the repository's tag list is unchanged
    /// since (`unchanged`): a tag that is not followed by digest is not asked again every
    /// interval; else [`Registries::digest`].
    pub fn digest_unless_unchanged(&self, repository: &ImageRepository, tag: &str, unchanged: bool) -> Result<String> {
        if unchanged && let Some(digest) = lock(&self.tags_seen).get(&format!("{}/{tag}", repository.key())) {
            return Ok(digest.clone());
        }
        self.digest(repository, tag)
    }

    /// The digest `tag` points at now, asked of the registry (`HEAD`; a `GET` when the answer
    /// names none).
    pub fn digest(&self, repository: &ImageRepository, tag: &str) -> Result<String> {
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let url = format!("{}/v2/{}/manifests/{tag}", repository.base, repository.path);
        let head = self.send(repository, &mut connection, Method::Head, &url, MANIFEST_TYPES, &[])?;
        let digest = match (head.status, head.digest.clone()) {
            (200, Some(digest)) => digest,
            (200, None) => {
                let got = self.send(repository, &mut connection, Method::Get, &url, MANIFEST_TYPES, &[])?;
                if got.status != 200 {
                    return Err(refused(&connection, &url, &got, repository));
                }
                sha256_digest(&got.body)
            }
            (_, _) => return Err(refused(&connection, &url, &head, repository)),
        };
        self.remember(&self.tags_seen, format!("{}/{tag}", repository.key()), digest.clone());
        Ok(digest)
    }

    /// When the image of `tag` for `platform` was built (its config's `created`), None when
    /// its config says nothing. A tag seen before is not asked again, nor a digest's config.
    pub fn created(&self, repository: &ImageRepository, tag: &str, platform: &str) -> Result<Option<jiff::Timestamp>> {
        let seen = lock(&self.tags_seen).get(&format!("{}/{tag}", repository.key())).cloned();
        let digest = match seen {
            Some(digest) => digest,
            None => self.digest(repository, tag)?,
        };
        let key = format!("{}@{digest}/{platform}", repository.key());
        if let Some(created) = lock(&self.created).get(&key) {
            return Ok(*created);
        }
        let connection = self.connection(repository)?;
        let mut connection = lock(&connection);
        let mut manifest = self.manifest(repository, &mut connection, &digest)?;
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
            manifest = self.manifest(repository, &mut connection, &entry.digest.clone())?;
        }
        let created = match manifest.config {
            None => None,
            Some(config) => {
                let url = format!("{}/v2/{}/blobs/{}", repository.base, repository.path, config.digest);
                let response =
                    self.send(repository, &mut connection, Method::Get, &url, "application/octet-stream", &[])?;
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

    fn manifest(&self, repository: &ImageRepository, connection: &mut Connection, digest: &str) -> Result<Manifest> {
        let url = format!("{}/v2/{}/manifests/{digest}", repository.base, repository.path);
        let response = self.send(repository, connection, Method::Get, &url, MANIFEST_TYPES, &[])?;
        if response.status != 200 {
            return Err(refused(connection, &url, &response, repository));
        }
        if sha256_digest(&response.body) != digest {
            return Err(connection.failed(&url, "the manifest's content is not its digest's"));
        }
        serde_json::from_slice(&response.body).map_err(|e| connection.failed(&url, &format!("not a manifest: {e}")))
    }

    /// One request, within the registry's slots, retried after a `429` or `503`'s `Retry-After`.
    fn send(
        &self,
        repository: &ImageRepository,
        connection: &mut Connection,
        method: Method<'_>,
        url: &str,
        accept: &str,
        extra: &[(&str, String)],
    ) -> Result<Response> {
        let slots = lock(&self.slots).entry(repository.host.clone()).or_default().clone();
        for attempt in 1..=ATTEMPTS {
            let response = {
                let _slot = acquire(&slots);
                self.requests.fetch_add(1, Ordering::Relaxed);
                connection.send_with(method, url, accept, extra)?
            };
            if !matches!(response.status, 429 | 503) || attempt == ATTEMPTS {
                return Ok(response);
            }
            // Without a Retry-After: 1, 2, 4, 8 s.
            let wait = response.retry_after.map_or(Duration::from_secs(1 << (attempt - 1)), Duration::from_secs);
            if wait > LONGEST_WAIT {
                return Ok(response);
            }
            std::thread::sleep(wait);
        }
        unreachable!("the last attempt returns")
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
        429 | 503 => Error::new(error.message).with_help(format!(
            "registry {} is limiting requests: it was asked again {ATTEMPTS} times, each after the wait it asked for (up to {} s)",
            repository.host,
            LONGEST_WAIT.as_secs()
        )),
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
