//! OCI registries, through the distribution API: charts pulled as helm stores them (a tag per
//! version, `+` written `_`, a manifest whose layer of type [`CHART_LAYER`] is the archive),
//! and artifacts in Flux's format pushed and pulled (`weaver hydrate --oci`, see
//! [`Artifact`]). A dozen requests' worth of protocol: `oci-client` would bring an async client
//! and reqwest beside kube's hyper, for the same few requests and the token flow `http`
//! already does.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::http::{Connection, MAX_BODY, Method, shown};
use super::{LockedChart, sha256_digest};
use crate::registry_limits::TagLimits;
use weaver_core::error::{Error, Result};
use weaver_project::chart::{RemoteChart, is_sha256_digest};

pub const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The layer `helm push` uploads a chart's provenance file as, when one is beside the archive.
pub const PROVENANCE_LAYER: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";
/// A chart's config: its Chart.yaml as JSON, as `helm push` writes it.
pub const CHART_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const IMAGE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Flux's media types (fluxcd/pkg's `oci` package), which its OCIRepository pulls.
pub const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// The annotations `flux push artifact` sets on the manifest (OpenContainers' names).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";
/// What a weaver artifact holds, on its manifest: [`REPOSITORY_CONTENT`] for a packed weaver
/// repository (`weaver push artifact`), which an EnvironmentSync renders as from git. Without
/// it, an artifact's tree is rendered manifests, applied as they are.
pub const CONTENT_ANNOTATION: &str = "weaver.example.com/content";
pub const REPOSITORY_CONTENT: &str = "repository";
/// Most an artifact's tree may hold unpacked.
pub const MAX_UNPACKED: u64 = 200 << 20;

/// The registry's base URL (`https://host`) and the chart's repository path in it.
pub fn location(chart: &RemoteChart) -> (String, String) {
    let rest = chart.repository.trim_start_matches("oci://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let scheme = if chart.plain_http { "http" } else { "https" };
    let repository = if path.is_empty() { chart.name.clone() } else { format!("{path}/{}", chart.name) };
    (format!("{scheme}://{host}"), repository)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    media_type: String,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
}

/// Resolves the chart's constraint against the registry's tags (or its digest), and pulls it.
pub fn resolve(connection: &mut Connection, chart: &RemoteChart) -> Result<(LockedChart, Vec<u8>)> {
    let (base, repository) = location(chart);
    let reference = if is_sha256_digest(&chart.version) {
        chart.version.clone()
    } else {
        let tags = tags(connection, &base, &repository, "the time a chart's tags may take")?;
        let versions: Vec<(String, &String)> = tags.iter().map(|t| (t.replace('_', "+"), t)).collect();
        super::repository::newest(versions.iter().map(|(v, t)| (v.as_str(), *t)), chart)?.clone()
    };
    let url = format!("{base}/v2/{repository}/manifests/{reference}");
    let (manifest_digest, manifest) = manifest(connection, &base, &repository, &reference)?
        .ok_or_else(|| connection.status_error(&url, &super::http::Response::status_only(404)))?;
    let Some(layer) = manifest.layers.iter().find(|l| l.media_type == CHART_LAYER) else {
        return Err(Error::new(format!("{url} is not a Helm chart: its manifest has no layer of type {CHART_LAYER}"))
            .with_help(format!("push charts with `helm push`; repository {}", chart.repository)));
    };
    let version = match is_sha256_digest(&reference) {
        false => reference.replace('_', "+"),
        true => {
            #[derive(Deserialize)]
            struct Config {
                version: String,
            }
            let config = manifest.config.as_ref().map(|c| c.digest.clone()).unwrap_or_default();
            let bytes = blob(connection, chart, &config)?;
            let config: Config = serde_json::from_slice(&bytes)
                .map_err(|e| connection.failed(&url, &format!("its config is not a Helm chart's: {e}")))?;
            config.version
        }
    };
    let data = blob(connection, chart, &layer.digest)?;
    let locked = LockedChart {
        repository: chart.repository.clone(),
        name: chart.name.clone(),
        constraint: chart.version.clone(),
        version,
        url: format!("{}/{}@{manifest_digest}", chart.repository, chart.name),
        digest: layer.digest.clone(),
        required_by: None,
        signed_by: None,
    };
    Ok((locked, data))
}

/// Every tag of `repository` at `base`, within the connection's bounds on tag lists and their
/// time (`time` says what that time is, in errors). Registries may answer in pages (the
/// distribution spec's `Link` header); helm reads them all.
fn tags(connection: &mut Connection, base: &str, repository: &str, time: &'static str) -> Result<Vec<String>> {
    let mut tags = TagList::new(connection.tag_limits, None);
    let deadline = Deadline::new(connection.list_time, time);
    let host = base.split_once("://").map_or(base, |(_, host)| host);
    let name = connection.repository.clone();
    let out_of_time = |url: &str| deadline.passed(host, url, &name);
    let mut pages = std::collections::HashSet::new();
    let mut next = Some(format!("{base}/v2/{repository}/tags/list"));
    while let Some(url) = next.take() {
        if !pages.insert(url.clone()) {
            return Err(connection.failed(&url, "the registry's tag list links back to a page it already gave"));
        }
        let max_body = tags.max_body(connection, &url)?;
        let response = deadline.within(
            || out_of_time(&url),
            |left| connection.send_bounded(Method::Get, &url, "application/json", &[], max_body, Some(left)),
        )?;
        if response.status != 200 {
            return Err(connection.status_error(&url, &response));
        }
        tags.page(connection, &url, &response)?;
        next = response.next;
    }
    Ok(tags.tags)
}

/// What the tag lists read so far hold, against their limits; `scope` names them in errors
/// (`repository`, `check`) and `variables` is the prefix of the variables that raise them.
pub(crate) struct Tally {
    limits: TagLimits,
    scope: &'static str,
    variables: &'static str,
    tags: AtomicUsize,
    pages: AtomicUsize,
    bytes: AtomicU64,
}

impl Tally {
    pub fn new(limits: TagLimits, scope: &'static str, variables: &'static str) -> Tally {
        Tally {
            limits,
            scope,
            variables,
            tags: AtomicUsize::new(0),
            pages: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Counts `tags`, `pages` and `bytes` more: Err saying which bound they pass and how to
    /// raise it.
    fn add(&self, tags: usize, pages: usize, bytes: u64) -> std::result::Result<(), (String, String)> {
        let over = |what: &str, limit: String, variable: &str| {
            Err((
                format!("its tag list holds more than {limit} {what} (the limit per {})", self.scope),
                format!("{}_{variable} raises it (see docs/src/guides/security.md, Registries)", self.variables),
            ))
        };
        if self.tags.fetch_add(tags, Ordering::Relaxed) + tags > self.limits.tags {
            return over("tags", self.limits.tags.to_string(), "MAX_TAGS");
        }
        if self.pages.fetch_add(pages, Ordering::Relaxed) + pages > self.limits.pages {
            return over("pages", self.limits.pages.to_string(), "MAX_PAGES");
        }
        if self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > self.limits.bytes {
            return over("bytes", self.limits.bytes.to_string(), "MAX_BYTES");
        }
        Ok(())
    }

    fn bytes_left(&self) -> u64 {
        self.limits.bytes.saturating_sub(self.bytes.load(Ordering::Relaxed))
    }
}

/// When reading a registry's tag lists must end, their pages, retries and waits included
/// (`WEAVER_REGISTRY_CHECK_SECONDS`): a registry is not trusted to end its lists or its answers.
pub(crate) struct Deadline {
    at: Instant,
    time: Duration,
    /// What the time is, in errors: `the check's time`.
    what: &'static str,
}

impl Deadline {
    pub fn new(time: Duration, what: &'static str) -> Deadline {
        Deadline { at: Instant::now() + time, time, what }
    }

    /// The time left; None once it is out.
    pub fn left(&self) -> Option<Duration> {
        self.at.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }

    /// `send` given the time left; its failure once the time is out (a request cut by it) is
    /// `out_of_time`'s error, as is there being no time left to send it.
    pub fn within<T>(&self, out_of_time: impl Fn() -> Error, send: impl FnOnce(Duration) -> Result<T>) -> Result<T> {
        let left = self.left().ok_or_else(&out_of_time)?;
        match send(left) {
            Err(_) if self.left().is_none() => Err(out_of_time()),
            sent => sent,
        }
    }

    /// The error of a request to `registry` (its host), for `repository`, that the time ran out for.
    pub fn passed(&self, registry: &str, url: &str, repository: &str) -> Error {
        Error::new(format!(
            "registry {registry} did not answer {} within {} ({} s)",
            shown(url),
            self.what,
            self.time.as_secs()
        ))
        .with_help(format!(
            "repository `{repository}`: WEAVER_REGISTRY_CHECK_SECONDS raises that time (see docs/src/guides/security.md, Registries)"
        ))
    }
}

/// Most characters of a refused tag an error or a report shows.
const SHOWN_TAG: usize = 64;

/// `tag` as a message may show it: control bytes, quotes and backslashes escaped (`\u{1b}`),
/// cut at `SHOWN_TAG` characters.
pub fn shown_tag(tag: &str) -> String {
    let mut shown: String = tag.chars().take(SHOWN_TAG).flat_map(char::escape_debug).collect();
    if tag.chars().nth(SHOWN_TAG).is_some() {
        shown.push('…');
    }
    shown
}

/// A repository's tags read page by page (`GET /v2/<name>/tags/list`) within the bounds of
/// the repository and of the check it is part of. Tags outside the distribution spec's grammar
/// (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) are counted and left out: such a tag could not be
/// pulled, and written in a pin it would change what the pin means (`a@sha256:…`).
pub(crate) struct TagList<'a> {
    pub tags: Vec<String>,
    /// Tags left out as not in the grammar, and the first of them (as [`shown_tag`] shows it).
    pub invalid: usize,
    pub invalid_example: Option<String>,
    repository: Tally,
    check: Option<&'a Tally>,
    /// Why the last page's reading stopped, when a bound did.
    stopped: Option<Error>,
}

impl<'a> TagList<'a> {
    pub fn new(limits: TagLimits, check: Option<&'a Tally>) -> TagList<'a> {
        TagList {
            tags: Vec::new(),
            invalid: 0,
            invalid_example: None,
            repository: Tally::new(limits, "repository", "WEAVER_REGISTRY"),
            check,
            stopped: None,
        }
    }

    /// The most the next page may hold, counted against both tallies; Err when that is nothing.
    pub fn max_body(&self, connection: &Connection, url: &str) -> Result<u64> {
        match self.bytes_left() {
            0 => Err(self.stop(connection, url, 1)),
            left => Ok(left),
        }
    }

    fn bytes_left(&self) -> u64 {
        self.check.map_or(u64::MAX, Tally::bytes_left).min(self.repository.bytes_left())
    }

    /// The error of a page of more than the bytes left (`bytes` more than they).
    fn stop(&self, connection: &Connection, url: &str, bytes: u64) -> Error {
        match self.count(connection, url, 0, 0, self.bytes_left().saturating_add(bytes)) {
            Err(stopped) => stopped,
            Ok(()) => connection.failed(url, "its tag list is over the bytes it may hold"),
        }
    }

    /// Counts into both tallies; the error names the repository and the bound passed.
    fn count(&self, connection: &Connection, url: &str, tags: usize, pages: usize, bytes: u64) -> Result<()> {
        let counted = self.repository.add(tags, pages, bytes);
        let counted = counted.and_then(|()| self.check.map_or(Ok(()), |check| check.add(tags, pages, bytes)));
        counted.map_err(|(why, raise)| {
            let error = connection.failed(url, &why);
            let help = format!("repository {}: {raise}", connection.repository);
            error.with_help(help)
        })
    }

    /// Reads one page's answer (its body read within [`TagList::max_body`]).
    pub fn page(&mut self, connection: &Connection, url: &str, response: &super::http::Response) -> Result<()> {
        if response.over_limit {
            return Err(self.stop(connection, url, 1));
        }
        self.count(connection, url, 0, 1, response.body.len() as u64)?;
        let mut reader = serde_json::Deserializer::from_slice(&response.body);
        let read = serde::de::DeserializeSeed::deserialize(PageSeed { list: self, connection, url }, &mut reader)
            .and_then(|()| reader.end());
        match (self.stopped.take(), read) {
            (Some(stopped), _) => Err(stopped),
            (None, Err(e)) => Err(connection.failed(url, &format!("not a tag list: {e}"))),
            (None, Ok(())) => Ok(()),
        }
    }

    /// Counts the tags of a page answered before (a `304 Not Modified`), of `bytes` then, and
    /// takes them into the list when `copy`.
    pub fn reuse(&mut self, connection: &Connection, url: &str, tags: &[String], bytes: u64, copy: bool) -> Result<()> {
        self.count(connection, url, tags.len(), 1, bytes)?;
        if copy {
            self.tags.extend_from_slice(tags);
        }
        Ok(())
    }

    /// One tag of a page: left out when not in the grammar, else counted and kept.
    fn tag(&mut self, connection: &Connection, url: &str, tag: String) -> bool {
        if !weaver_project::image_updates::is_tag(&tag) {
            self.invalid += 1;
            self.invalid_example.get_or_insert_with(|| shown_tag(&tag));
            return true;
        }
        if let Err(stopped) = self.count(connection, url, 1, 0, 0) {
            self.stopped = Some(stopped);
            return false;
        }
        self.tags.push(tag);
        true
    }
}

/// A tag list page, `{"name": …, "tags": [...]}`, read into a [`TagList`] tag by tag: no
/// page's tags are held apart from the list.
struct PageSeed<'l, 'a, 'c> {
    list: &'l mut TagList<'a>,
    connection: &'c Connection,
    url: &'c str,
}

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with `tags`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let PageSeed { list, connection, url } = self;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "tags" => map.next_value_seed(TagsSeed(PageSeed { list: &mut *list, connection, url }))?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The `tags` array of a page (or null), read into the same list.
struct TagsSeed<'l, 'a, 'c>(PageSeed<'l, 'a, 'c>);

impl<'de> serde::de::DeserializeSeed<'de> for TagsSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TagsSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of tags")
    }

    fn visit_none<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let TagsSeed(PageSeed { list, connection, url }) = self;
        while let Some(tag) = seq.next_element::<String>()? {
            if !list.tag(connection, url, tag) {
                return Err(serde::de::Error::custom("stopped at a bound"));
            }
        }
        Ok(())
    }
}

/// The blob `digest` of the chart's repository, checked against its digest.
pub fn blob(connection: &mut Connection, chart: &RemoteChart, digest: &str) -> Result<Vec<u8>> {
    blob_within(connection, chart, digest, MAX_BODY)
}

/// [`blob`], read up to `max` bytes: a larger one is an error.
pub fn blob_within(connection: &mut Connection, chart: &RemoteChart, digest: &str, max: u64) -> Result<Vec<u8>> {
    let (base, repository) = location(chart);
    blob_of(connection, &base, &repository, digest, max)
}

/// The layers of an OCI chart's manifest that weaver reads: the chart, and helm's provenance
/// file when `helm push` uploaded one.
pub struct ChartLayers {
    pub chart: String,
    /// Its digest and the size its descriptor says.
    pub provenance: Option<(String, u64)>,
}

/// The layers of the chart's manifest `digest` (checked against its content).
pub fn chart_layers(connection: &mut Connection, chart: &RemoteChart, digest: &str) -> Result<ChartLayers> {
    let (base, repository) = location(chart);
    let url = format!("{base}/v2/{repository}/manifests/{digest}");
    let (_, manifest) = manifest(connection, &base, &repository, digest)?
        .ok_or_else(|| connection.status_error(&url, &super::http::Response::status_only(404)))?;
    let Some(layer) = manifest.layers.iter().find(|l| l.media_type == CHART_LAYER) else {
        return Err(Error::new(format!("{url} is not a Helm chart: its manifest has no layer of type {CHART_LAYER}")));
    };
    let provenance =
        manifest.layers.iter().find(|l| l.media_type == PROVENANCE_LAYER).map(|l| (l.digest.clone(), l.size));
    Ok(ChartLayers { chart: layer.digest.clone(), provenance })
}

/// The manifest `reference` (a tag or a digest) of `repository` at `base`, with its digest
/// (checked against a digest reference); None when the registry has no such manifest.
fn manifest(
    connection: &mut Connection,
    base: &str,
    repository: &str,
    reference: &str,
) -> Result<Option<(String, Manifest)>> {
    let url = format!("{base}/v2/{repository}/manifests/{reference}");
    let response = connection.get(&url, MANIFEST)?;
    if response.status == 404 {
        return Ok(None);
    }
    if response.status != 200 {
        return Err(connection.status_error(&url, &response));
    }
    let digest = sha256_digest(&response.body);
    if is_sha256_digest(reference) && digest != reference {
        return Err(connection.failed(&url, &format!("the registry's manifest has digest {digest}")));
    }
    let manifest = serde_json::from_slice(&response.body)
        .map_err(|e| connection.failed(&url, &format!("not an OCI manifest: {e}")))?;
    Ok(Some((digest, manifest)))
}

/// The blob `digest` of `repository` at `base`, read up to `max` bytes and checked against its
/// digest.
fn blob_of(connection: &mut Connection, base: &str, repository: &str, digest: &str, max: u64) -> Result<Vec<u8>> {
    if !is_sha256_digest(digest) {
        return Err(Error::new(format!("`{digest}` is not a sha256 digest"))
            .with_help(format!("repository {}", connection.repository)));
    }
    let url = format!("{base}/v2/{repository}/blobs/{digest}");
    let response = connection.send_bounded(Method::Get, &url, "application/octet-stream", &[], max, None)?;
    if response.over_limit {
        return Err(connection.failed(&url, &format!("the blob is over {max} bytes")));
    }
    if response.status != 200 {
        return Err(connection.status_error(&url, &response));
    }
    let actual = sha256_digest(&response.body);
    if actual != digest {
        return Err(connection.failed(&url, &format!("the blob's content has digest {actual}")));
    }
    Ok(response.body)
}

/// An artifact's place, `REGISTRY/REPOSITORY:TAG`, pushed and pulled in Flux's format (as
/// `flux push artifact` makes it and Flux's OCIRepository pulls it): a config of type
/// [`FLUX_CONFIG`], one layer of type [`FLUX_CONTENT`], a gzipped tar of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// Plain http instead of https (`--plain-http`, as helm's flag).
    pub plain_http: bool,
}

impl Artifact {
    /// `REGISTRY/REPOSITORY:TAG`, `oci://` before it or not (Flux writes it); `flag` names
    /// where it was given, for errors.
    pub fn parse(text: &str, plain_http: bool, flag: &str) -> Result<Artifact> {
        // Whatever comes before an `@` may be credentials (`user:password@host`): never shown.
        let shown = match text.rsplit_once('@') {
            Some((_, after)) => format!("***@{after}"),
            None => text.to_string(),
        };
        let bad = |why: &str| {
            Error::new(format!("{flag} `{shown}` {why}")).with_help(
                "write REGISTRY/REPOSITORY:TAG, such as ghcr.io/org/shop-hydrated:prod or 127.0.0.1:5000/shop:latest",
            )
        };
        let rest = text.strip_prefix("oci://").unwrap_or(text);
        let Some((registry, path)) = rest.split_once('/') else { return Err(bad("names no repository")) };
        let Some((repository, tag)) = path.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) else {
            return Err(bad("names no tag"));
        };
        if registry.is_empty() || registry.contains(['@', '?', '#']) {
            return Err(bad("names no registry host (credentials go in the docker config, not the reference)"));
        }
        // The distribution spec's grammar for names and tags.
        let component = regex::Regex::new("^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*$").expect("a valid regex");
        if repository.is_empty() || !repository.split('/').all(|c| component.is_match(c)) {
            return Err(bad(
                "has a repository name the distribution spec does not accept (lowercase letters, digits, `.`, `_`, `-`, `/`)",
            ));
        }
        let tag_grammar = regex::Regex::new("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("a valid regex");
        if !tag_grammar.is_match(tag) {
            return Err(bad(
                "has a tag the distribution spec does not accept (letters, digits, `_`, `.`, `-`; at most 128)",
            ));
        }
        Ok(Artifact {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.to_string(),
            plain_http,
        })
    }

    /// `url` (`oci://REGISTRY/REPOSITORY`) at `reference`, a tag or a `sha256:` digest (which
    /// then stands in the tag's place); `field` names where they were given, for errors.
    pub fn at(url: &str, reference: &str, plain_http: bool, field: &str) -> Result<Artifact> {
        let digest = is_sha256_digest(reference).then_some(reference);
        let tag = if digest.is_some() { "latest" } else { reference };
        let mut artifact = Artifact::parse(&format!("{url}:{tag}"), plain_http, field)?;
        if let Some(digest) = digest {
            artifact.tag = digest.to_string();
        }
        Ok(artifact)
    }

    /// `http(s)://registry`.
    fn base(&self) -> String {
        format!("{}://{}", if self.plain_http { "http" } else { "https" }, self.registry)
    }

    /// Every tag of the artifact's repository.
    pub fn tags(&self, connection: &mut Connection) -> Result<Vec<String>> {
        tags(connection, &self.base(), &self.repository, "the time an artifact's tags may take")
    }

    /// What a `GET` of `path` of the artifact's repository (`manifests/TAG`, `blobs/DIGEST`),
    /// read within `bound` bytes, found of a signature ([`crate::signatures::Get`]).
    pub fn signature_part(
        &self,
        connection: &mut Connection,
        path: &str,
        accept: &str,
        bound: u64,
    ) -> Result<crate::signatures::Part> {
        let url = format!("{}/v2/{}/{path}", self.base(), self.repository);
        let response = connection.send_bounded(Method::Get, &url, accept, &[], bound, None)?;
        connection.found(&url, response)
    }

    /// A connection with the machine's credentials for the registry, found as a chart's are.
    pub fn connect(&self, machine: &super::http::Machine) -> Result<Connection> {
        let url = format!("oci://{}/{}", self.registry, self.repository);
        Connection::open(machine, &url, None, &self.base())
    }
}

impl std::fmt::Display for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if is_sha256_digest(&self.tag) { '@' } else { ':' };
        write!(f, "{}/{}{at}{}", self.registry, self.repository, self.tag)
    }
}

/// An artifact's tree, by path (`/`-separated, relative), as pulled.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// The tree the artifact's tag (or `reference`, a digest, when given) holds, with its
/// manifest's digest; None when the registry has no such tag.
pub fn pull_artifact(
    connection: &mut Connection,
    artifact: &Artifact,
    reference: Option<&str>,
) -> Result<Option<(String, Tree)>> {
    let (base, reference) = (artifact.base(), reference.unwrap_or(&artifact.tag));
    let Some((digest, manifest)) = manifest(connection, &base, &artifact.repository, reference)? else {
        return Ok(None);
    };
    let Some(layer) = manifest.layers.iter().find(|l| l.media_type == FLUX_CONTENT) else {
        return Err(Error::new(format!(
            "{artifact} is not a Flux artifact: its manifest has no layer of type {FLUX_CONTENT}"
        ))
        .with_help("push hydrated trees to a tag of their own: weaver replaces what the tag holds"));
    };
    let data = blob_of(connection, &base, &artifact.repository, &layer.digest, MAX_BODY)?;
    let tree = unpack(&data).map_err(|why| {
        Error::new(format!("{artifact}: cannot read its layer {}: {why}", layer.digest))
            .with_help("push hydrated trees to a tag of their own: weaver replaces what the tag holds")
    })?;
    Ok(Some((digest, tree)))
}

/// The layer of an EnvironmentSync's source artifact: a weaver repository's (`weaver push
/// artifact`), or rendered manifests (`weaver hydrate --oci`, `flux push artifact`).
#[derive(Debug, Clone)]
pub struct RepositoryLayer {
    /// The manifest's digest: the revision an EnvironmentSync applies.
    pub manifest: String,
    /// The layer's digest and size, as the manifest's descriptor says them.
    pub digest: String,
    pub size: u64,
    /// The manifest has no [`CONTENT_ANNOTATION`] `repository`: the tree is rendered manifests.
    pub manifests: bool,
}

/// The Flux content layer of the artifact the tag (or digest, in place of the tag) names;
/// None when the registry has no such manifest. One without a layer of type [`FLUX_CONTENT`]
/// (an image, a chart) is refused.
pub fn repository_layer(connection: &mut Connection, artifact: &Artifact) -> Result<Option<RepositoryLayer>> {
    let Some((digest, manifest)) = manifest(connection, &artifact.base(), &artifact.repository, &artifact.tag)? else {
        return Ok(None);
    };
    let Some(layer) = manifest.layers.iter().find(|l| l.media_type == FLUX_CONTENT) else {
        return Err(Error::new(format!("{artifact} ({digest}) has no layer of type {FLUX_CONTENT}")).with_help(
            "push a weaver repository with `weaver push artifact`, or rendered manifests with `weaver hydrate --oci` or `flux push artifact`",
        ));
    };
    let manifests = manifest.annotations.get(CONTENT_ANNOTATION).map(String::as_str) != Some(REPOSITORY_CONTENT);
    Ok(Some(RepositoryLayer { manifest: digest, digest: layer.digest.clone(), size: layer.size, manifests }))
}

/// The bytes of `layer`, read up to `max` and checked against its digest.
pub fn repository_blob(
    connection: &mut Connection,
    artifact: &Artifact,
    layer: &RepositoryLayer,
    max: u64,
) -> Result<Vec<u8>> {
    blob_of(connection, &artifact.base(), &artifact.repository, &layer.digest, max)
}

/// An artifact built, not yet pushed: its manifest's digest names it.
pub struct Built {
    pub digest: String,
    pub manifest: Vec<u8>,
    /// Its config's and layers' bytes, the config first.
    pub blobs: Vec<Vec<u8>>,
}

/// A manifest of `config` and `layers` (each a media type and its bytes), with `annotations`:
/// the same parts give the same bytes, so the same digest.
pub fn build_manifest(
    config: (&str, Vec<u8>),
    layers: Vec<(&str, Vec<u8>)>,
    annotations: BTreeMap<String, String>,
) -> Built {
    let descriptor = |media_type: &str, bytes: &[u8]| Descriptor {
        media_type: media_type.to_string(),
        digest: sha256_digest(bytes),
        size: bytes.len() as u64,
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST.to_string(),
        config: Some(descriptor(config.0, &config.1)),
        layers: layers.iter().map(|(media_type, bytes)| descriptor(media_type, bytes)).collect(),
        annotations,
    };
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let blobs = std::iter::once(config.1).chain(layers.into_iter().map(|(_, bytes)| bytes)).collect();
    Built { digest: sha256_digest(&manifest), manifest, blobs }
}

/// `tree` as an artifact with `annotations` on its manifest; the same tree and annotations
/// give the same bytes, so the same digest (entries sorted, times, owners and modes fixed).
pub fn build_artifact(tree: &Tree, annotations: BTreeMap<String, String>) -> Built {
    // OCI's empty JSON: Flux reads nothing of the config but its media type.
    build_manifest((FLUX_CONFIG, b"{}".to_vec()), vec![(FLUX_CONTENT, pack(tree))], annotations)
}

/// A weaver repository's `files` (path → bytes and mode) as an artifact in Flux's format, its
/// manifest annotated [`CONTENT_ANNOTATION`] `repository` beside `annotations`.
pub fn build_repository_artifact(
    files: &BTreeMap<String, (Vec<u8>, u32)>,
    mut annotations: BTreeMap<String, String>,
) -> Built {
    annotations.insert(CONTENT_ANNOTATION.to_string(), REPOSITORY_CONTENT.to_string());
    build_manifest((FLUX_CONFIG, b"{}".to_vec()), vec![(FLUX_CONTENT, pack_files(files))], annotations)
}

/// Pushes `built` to the artifact's tag: its blobs (those the registry lacks), then its
/// manifest. Returns the manifest's digest as the registry took it.
pub fn push_artifact(connection: &mut Connection, artifact: &Artifact, built: &Built) -> Result<String> {
    push_blobs(connection, artifact, &built.blobs)?;
    put_manifest(connection, artifact, &artifact.tag, MANIFEST, &built.manifest)?;
    Ok(built.digest.clone())
}

/// Uploads each of `blobs` the artifact's repository lacks.
pub fn push_blobs(connection: &mut Connection, artifact: &Artifact, blobs: &[Vec<u8>]) -> Result<()> {
    let base = artifact.base();
    let repository = &artifact.repository;
    for blob in blobs {
        let digest = sha256_digest(blob);
        let url = format!("{base}/v2/{repository}/blobs/{digest}");
        if connection.send(Method::Head, &url, "*/*")?.status == 200 {
            continue;
        }
        let start = format!("{base}/v2/{repository}/blobs/uploads/");
        let response = connection.send(Method::Post("application/octet-stream", &[]), &start, "*/*")?;
        let Some(location) = response.location.clone().filter(|_| response.status == 202) else {
            return Err(connection.status_error(&start, &response));
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", digest.replace(':', "%3A"));
        let response = connection.send(Method::Put("application/octet-stream", blob), &url, "*/*")?;
        if response.status != 201 {
            return Err(connection.status_error(&url, &response));
        }
    }
    Ok(())
}

/// Puts `bytes`, a manifest or an index of `media_type`, at `reference` (a tag or its digest)
/// of the artifact's repository.
pub fn put_manifest(
    connection: &mut Connection,
    artifact: &Artifact,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<()> {
    let url = format!("{}/v2/{}/manifests/{reference}", artifact.base(), artifact.repository);
    let response = connection.send(Method::Put(media_type, bytes), &url, "*/*")?;
    if response.status != 201 {
        return Err(connection.status_error(&url, &response));
    }
    Ok(())
}

/// `files` (path → bytes and mode) as a gzipped tar, in path order, every time zero and owner
/// root: the same files give the same bytes.
pub fn pack_files(files: &BTreeMap<String, (Vec<u8>, u32)>) -> Vec<u8> {
    let gzip = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(gzip);
    for (path, (bytes, mode)) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(*mode);
        header.set_size(bytes.len() as u64);
        archive.append_data(&mut header, path, bytes.as_slice()).expect("writing to memory");
    }
    let gzip = archive.into_inner().expect("writing to memory");
    gzip.finish().expect("writing to memory")
}

/// `tree` as a gzipped tar: its directories, then files, in path order; every time zero,
/// every owner root, modes 0755 and 0644.
fn pack(tree: &Tree) -> Vec<u8> {
    let mut directories = std::collections::BTreeSet::new();
    for path in tree.keys() {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            directories.insert(format!("{parent}/"));
            at = parent;
        }
    }
    let gzip = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(gzip);
    let entries = (directories.iter().map(|d| (d.as_str(), None)))
        .chain(tree.iter().map(|(path, bytes)| (path.as_str(), Some(bytes.as_slice()))));
    let mut all: Vec<(&str, Option<&[u8]>)> = entries.collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    for (path, content) in all {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let bytes = content.unwrap_or_default();
        match content {
            Some(_) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
            }
        }
        header.set_size(bytes.len() as u64);
        archive.append_data(&mut header, path, bytes).expect("writing to memory");
    }
    let gzip = archive.into_inner().expect("writing to memory");
    gzip.finish().expect("writing to memory")
}

/// The regular files of a gzipped tar, within [`MAX_UNPACKED`]; an entry that is not a plain
/// file or directory inside the tree is refused (see [`each_file`]).
fn unpack(data: &[u8]) -> std::result::Result<Tree, String> {
    let mut tree = Tree::new();
    let bounds = Bounds { max_bytes: MAX_UNPACKED, max_files: usize::MAX };
    each_file(data, bounds, |path, bytes| {
        tree.insert(path.to_string(), bytes);
        Ok(())
    })
    .map_err(|unpacked| match unpacked {
        Unpacked::TooLarge(why) | Unpacked::Invalid(why) => why,
    })?;
    Ok(tree)
}

/// How much one artifact may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Bytes of its files together.
    pub max_bytes: u64,
    pub max_files: usize,
}

/// Why a layer was not unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpacked {
    /// Over its [`Bounds`].
    TooLarge(String),
    /// Not a gzipped tar, or an entry that is not a plain file or directory inside the tree.
    Invalid(String),
}

/// Unpacks a gzipped tar into `dir` (made; nothing there before), within `bounds`: the bytes
/// of its files together.
pub fn unpack_into(data: &[u8], dir: &Path, bounds: Bounds) -> std::result::Result<u64, Unpacked> {
    let io = |e: std::io::Error| Unpacked::Invalid(format!("cannot write it to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut total = 0;
    each_file(data, bounds, |path, bytes| {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        total += bytes.len() as u64;
        std::fs::write(&target, bytes).map_err(io)
    })?;
    Ok(total)
}

/// Calls `file` with each regular file of a gzipped tar, by its path inside the tree. A path
/// that climbs out of the tree or is absolute, a link (symbolic or hard), a device or a FIFO is
/// refused, naming the entry, as are more files or bytes than `bounds` allow; directories and
/// tar's own headers are passed over.
fn each_file(
    data: &[u8],
    bounds: Bounds,
    mut file: impl FnMut(&str, Vec<u8>) -> std::result::Result<(), Unpacked>,
) -> std::result::Result<(), Unpacked> {
    let invalid = |e: std::io::Error| Unpacked::Invalid(format!("not a gzipped tar: {e}"));
    let gzip = flate2::read::GzDecoder::new(data);
    // One byte past the bound tells a tree over it from one exactly at it.
    let mut archive = tar::Archive::new(gzip.take(bounds.max_bytes.saturating_add(1 << 20)));
    let (mut files, mut bytes) = (0usize, 0u64);
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Directory | tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => continue,
            other => {
                let what = match other {
                    tar::EntryType::Symlink => "a symbolic link",
                    tar::EntryType::Link => "a hard link",
                    tar::EntryType::Char | tar::EntryType::Block => "a device",
                    tar::EntryType::Fifo => "a FIFO",
                    _ => "not a regular file",
                };
                return Err(Unpacked::Invalid(format!("`{raw}` is {what}: an artifact holds regular files only")));
            }
        }
        let path = raw.trim_start_matches("./");
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(Unpacked::Invalid(format!("`{raw}` is not a path inside the tree")));
        }
        files += 1;
        bytes = bytes.saturating_add(entry.size());
        if files > bounds.max_files {
            return Err(Unpacked::TooLarge(format!("it holds more than {} files", bounds.max_files)));
        }
        if bytes > bounds.max_bytes {
            return Err(Unpacked::TooLarge(format!("its files are more than {} bytes unpacked", bounds.max_bytes)));
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(invalid)?;
        file(path, content)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::charts::http::Machine;
    use weaver_test_support::http_server::TestServer;

    #[test]
    fn a_chart_s_tag_list_is_read_within_the_registries_check_time() {
        // Each page takes 300 ms and links to the next, 40 pages in all (12 s).
        let server = TestServer::start(|_, request| {
            std::thread::sleep(Duration::from_millis(300));
            let n: usize = request.path.split("page=").nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            let link = match n < 40 {
                true => format!("Link: </v2/charts/web/tags/list?page={}>; rel=\"next\"\r\n", n + 1),
                false => String::new(),
            };
            ("200 OK", link, br#"{"tags":["1.0.0"]}"#.to_vec())
        });
        let mut machine = Machine::anonymous();
        machine.registry_limits.check_time = Duration::from_secs(1);
        let repository = format!("oci://127.0.0.1:{}/charts", server.port);
        let chart = RemoteChart {
            repository: repository.clone(),
            repository_name: None,
            name: "web".into(),
            version: String::new(),
            plain_http: true,
            keys: None,
        };
        let mut connection = Connection::open(&machine, &repository, None, &location(&chart).0).unwrap();
        let started = Instant::now();
        let err = resolve(&mut connection, &chart).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
        let registry = format!("127.0.0.1:{}", server.port);
        assert_eq!(
            err.message,
            format!(
                "registry {registry} did not answer http://{registry}/v2/charts/web/tags/list within the time a chart's tags may take (1 s)"
            )
        );
        let help = err.help.unwrap();
        assert!(
            help.starts_with(&format!("repository `{repository}`: WEAVER_REGISTRY_CHECK_SECONDS raises")),
            "{help}"
        );
    }

    #[test]
    fn an_artifact_reference_is_registry_repository_and_tag() {
        let artifact = Artifact::parse("oci://127.0.0.1:5000/shop/hydrated:prod-1", true, "--oci").unwrap();
        assert_eq!(
            (artifact.registry.as_str(), artifact.repository.as_str(), artifact.tag.as_str()),
            ("127.0.0.1:5000", "shop/hydrated", "prod-1")
        );
        assert_eq!(artifact.base(), "http://127.0.0.1:5000");
        assert_eq!(artifact.to_string(), "127.0.0.1:5000/shop/hydrated:prod-1");
        for (bad, why) in [
            ("ghcr.io", "names no repository"),
            ("ghcr.io/org/shop", "names no tag"),
            ("localhost:5000/shop", "names no tag"),
            ("ghcr.io/Org/shop:v1", "repository name"),
            ("ghcr.io/org/shop:-v1", "has a tag"),
        ] {
            let err = Artifact::parse(bad, false, "--oci").unwrap_err().to_string();
            assert!(err.contains(&format!("--oci `{bad}`")) && err.contains(why), "{bad}: {err}");
        }
        // Credentials written into the reference are refused without being shown, a password
        // holding a `/` too.
        for (bad, why) in [
            ("user:pw@ghcr.io/org/shop:v1", "names no registry host"),
            ("user:p/w@ghcr.io/org/shop:v1", "repository name"),
        ] {
            let err = Artifact::parse(bad, false, "--oci").unwrap_err().to_string();
            assert!(err.contains("--oci `***@ghcr.io/org/shop:v1`") && err.contains(why), "{bad}: {err}");
            assert!(!err.contains("pw") && !err.contains("p/w"), "{err}");
        }
    }

    #[test]
    fn a_tree_packs_the_same_bytes_each_time_and_unpacks_to_itself() {
        let tree: Tree =
            [("prod/web.yaml", "a: 1\n"), ("dev/web.yaml", "b: 2\n"), ("dev/weaver-hydrate.metadata", "{}\n")]
                .into_iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect();
        let annotations = BTreeMap::from([(REVISION_ANNOTATION.to_string(), "sha1:abc".to_string())]);
        let (first, second) = (build_artifact(&tree, annotations.clone()), build_artifact(&tree, annotations));
        assert_eq!(first.digest, second.digest);
        assert_eq!(first.blobs, second.blobs);
        assert_eq!(unpack(&first.blobs[1]).unwrap(), tree);
        let mut other = tree.clone();
        other.insert("dev/web.yaml".into(), b"b: 3\n".to_vec());
        assert_ne!(build_artifact(&other, BTreeMap::new()).digest, first.digest);
        let manifest: serde_json::Value = serde_json::from_slice(&first.manifest).unwrap();
        assert_eq!(manifest["config"]["mediaType"], FLUX_CONFIG);
        assert_eq!(manifest["layers"][0]["mediaType"], FLUX_CONTENT);
        assert_eq!(manifest["annotations"][REVISION_ANNOTATION], "sha1:abc");
    }

    #[test]
    fn a_layer_with_a_path_outside_its_tree_is_refused() {
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut archive = tar::Builder::new(gzip);
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // append_data refuses `..`: the name is written into the header directly.
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../x.yaml");
        header.set_cksum();
        archive.append(&header, &b"x"[..]).unwrap();
        let data = archive.into_inner().unwrap().finish().unwrap();
        assert!(unpack(&data).unwrap_err().contains("`../x.yaml` is not a path inside the tree"));
    }

    #[test]
    fn a_repository_unpacks_within_its_bounds_and_links_and_devices_are_refused() {
        let files: BTreeMap<String, (Vec<u8>, u32)> =
            [("environments/dev.yaml", "a: 1\n"), ("charts/app/chart.yaml", "b\n")]
                .into_iter()
                .map(|(p, c)| (p.to_string(), (c.as_bytes().to_vec(), 0o644)))
                .collect();
        let data = pack_files(&files);
        let dir = tempfile::tempdir().unwrap();
        let bounds = Bounds { max_bytes: 7, max_files: 2 };
        assert_eq!(unpack_into(&data, &dir.path().join("ok"), bounds), Ok(7));
        assert_eq!(std::fs::read(dir.path().join("ok/environments/dev.yaml")).unwrap(), b"a: 1\n");
        let over = |bounds| unpack_into(&data, &dir.path().join("over"), bounds).unwrap_err();
        assert_eq!(
            over(Bounds { max_bytes: 6, max_files: 2 }),
            Unpacked::TooLarge("its files are more than 6 bytes unpacked".into())
        );
        assert_eq!(
            over(Bounds { max_bytes: 7, max_files: 1 }),
            Unpacked::TooLarge("it holds more than 1 files".into())
        );
        for (kind, what) in [
            (tar::EntryType::Symlink, "a symbolic link"),
            (tar::EntryType::Link, "a hard link"),
            (tar::EntryType::Char, "a device"),
            (tar::EntryType::Fifo, "a FIFO"),
        ] {
            let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let mut archive = tar::Builder::new(gzip);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            archive.append_data(&mut header, "environments/dev.yaml", &[][..]).unwrap();
            let data = archive.into_inner().unwrap().finish().unwrap();
            let refused = unpack_into(&data, &dir.path().join("odd"), bounds).unwrap_err();
            assert_eq!(
                refused,
                Unpacked::Invalid(format!("`environments/dev.yaml` is {what}: an artifact holds regular files only"))
            );
        }
    }
}
