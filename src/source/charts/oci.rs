//! Charts in OCI registries, through the distribution API as helm stores them: a tag per
//! version (`+` written `_`), a manifest whose layer of type [`CHART_LAYER`] is the archive.
//! A dozen requests' worth of protocol: `oci-client` would bring an async client and reqwest
//! beside kube's hyper, for the same three GETs and the token flow `http` already does.

use serde::Deserialize;

use super::http::Connection;
use super::{LockedChart, sha256_digest};
use crate::error::{Error, Result};
use crate::project::chart::{RemoteChart, is_sha256_digest};

const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The registry's base URL (`https://host`) and the chart's repository path in it.
pub fn location(chart: &RemoteChart) -> (String, String) {
    let rest = chart.repository.trim_start_matches("oci://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let scheme = if chart.plain_http { "http" } else { "https" };
    let repository = if path.is_empty() { chart.name.clone() } else { format!("{path}/{}", chart.name) };
    (format!("{scheme}://{host}"), repository)
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
    config: Option<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
}

/// Resolves the chart's constraint against the registry's tags (or its digest), and pulls it.
pub fn resolve(connection: &mut Connection, chart: &RemoteChart) -> Result<(LockedChart, Vec<u8>)> {
    let (base, repository) = location(chart);
    let reference = if is_sha256_digest(&chart.version) {
        chart.version.clone()
    } else {
        // Registries may answer in pages (the distribution spec's `Link` header); helm reads them all.
        let mut tags = Vec::new();
        let mut pages = std::collections::HashSet::new();
        let mut next = Some(format!("{base}/v2/{repository}/tags/list"));
        while let Some(url) = next.take() {
            if !pages.insert(url.clone()) {
                return Err(connection.failed(&url, "the registry's tag list links back to a page it already gave"));
            }
            let response = connection.get(&url, "application/json")?;
            if response.status != 200 {
                return Err(connection.status_error(&url, &response));
            }
            #[derive(Deserialize)]
            struct Tags {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let page: Tags = serde_json::from_slice(&response.body)
                .map_err(|e| connection.failed(&url, &format!("not a tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            next = response.next;
        }
        let versions: Vec<(String, &String)> = tags.iter().map(|t| (t.replace('_', "+"), t)).collect();
        super::repository::newest(versions.iter().map(|(v, t)| (v.as_str(), *t)), chart)?.clone()
    };
    let url = format!("{base}/v2/{repository}/manifests/{reference}");
    let response = connection.get(&url, MANIFEST)?;
    if response.status != 200 {
        return Err(connection.status_error(&url, &response));
    }
    let manifest_digest = sha256_digest(&response.body);
    if is_sha256_digest(&reference) && manifest_digest != reference {
        return Err(connection.failed(&url, &format!("the registry's manifest has digest {manifest_digest}")));
    }
    let manifest: Manifest = serde_json::from_slice(&response.body)
        .map_err(|e| connection.failed(&url, &format!("not an OCI manifest: {e}")))?;
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
    };
    Ok((locked, data))
}

/// The blob `digest` of the chart's repository, checked against its digest.
pub fn blob(connection: &mut Connection, chart: &RemoteChart, digest: &str) -> Result<Vec<u8>> {
    let (base, repository) = location(chart);
    if !is_sha256_digest(digest) {
        return Err(Error::new(format!("`{digest}` is not a sha256 digest"))
            .with_help(format!("repository {}", chart.repository)));
    }
    let url = format!("{base}/v2/{repository}/blobs/{digest}");
    let response = connection.get(&url, "application/octet-stream")?;
    if response.status != 200 {
        return Err(connection.status_error(&url, &response));
    }
    let actual = sha256_digest(&response.body);
    if actual != digest {
        return Err(connection.failed(&url, &format!("the blob's content has digest {actual}")));
    }
    Ok(response.body)
}
