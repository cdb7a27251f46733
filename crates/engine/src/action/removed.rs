//! Releases an environment no longer has (`--prune-releases`): found by their records, wherever
//! they are, and removed as `installed: false` removes a release (its recorded `pre-delete`
//! hooks, its objects pruned, its `post-delete` hooks, a record that holds nothing).

use std::collections::{BTreeSet, HashMap};

use super::{OnProgress, Progress};
use crate::observe::deployed_records_everywhere;
use weaver_cluster::Cluster;
use weaver_core::error::Result;
use weaver_core::manifest::{LABEL_RELEASE, ObjectKey};
use weaver_project::Environment;
use weaver_project::RenderedRelease;
use weaver_secrets::Redactor;

/// Where `--prune-releases` looks for the records of releases an environment no longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneReleases {
    No,
    /// Every namespace (one LIST of Secrets across the cluster), as the CLI does.
    Everywhere,
    /// The environment's own namespaces (its releases' and its default): what an account that
    /// may not list Secrets across the cluster can search, as the controller's tenants.
    InEnvironment,
}

impl From<bool> for PruneReleases {
    /// `--prune-releases`, or not: the CLI's search, across the cluster.
    fn from(prune_releases: bool) -> PruneReleases {
        match prune_releases {
            true => PruneReleases::Everywhere,
            false => PruneReleases::No,
        }
    }
}

/// The releases of `env` that the cluster has deployed records of and the environment no longer
/// defines, each as a release to remove. A release whose last record holds nothing is already
/// removed. One whose objects a release of `rendered` (this run's) renders was renamed: it is
/// left, as removing it would run its delete hooks against objects that live on. The recorded
/// secret values of those removed are registered with `redactor` (nothing of theirs is
/// decrypted this run).
pub(super) async fn removed_releases(
    cluster: &Cluster,
    env: &Environment,
    rendered: &[RenderedRelease],
    redactor: &Redactor,
    search: &PruneReleases,
    on: OnProgress<'_>,
) -> Result<Vec<RenderedRelease>> {
    let within: Option<BTreeSet<String>> = match search {
        PruneReleases::No => return Ok(Vec::new()),
        PruneReleases::Everywhere => None,
        PruneReleases::InEnvironment => {
            Some(env.releases.iter().map(|r| r.namespace.clone()).chain([env.namespace.clone()]).collect())
        }
    };
    let defined: HashMap<&str, &str> = env.releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
    let found =
        deployed_records_everywhere(cluster, &env.name, &env.lock_namespace, within.as_ref(), |namespace, release| {
            defined.get(release) != Some(&namespace)
        })
        .await?;
    for (namespace, name) in &found.unlabelled {
        on(Progress::Warning(format!(
            "release `{name}` has a deployed revision of environment `{}` in namespace {namespace} written before weaver labelled records with their lock namespace, so it cannot tell whether the release is this project's: --prune-releases leaves it; if it is, remove it with `installed: false`",
            env.name
        )));
    }
    let records = found.records;
    let rendered_by: HashMap<ObjectKey, &str> =
        rendered.iter().flat_map(|r| r.manifests.iter().map(|m| (m.key(), r.name.as_str()))).collect();
    let mut namespaces: HashMap<&str, Vec<&str>> = HashMap::new();
    for (namespace, record) in &records {
        namespaces.entry(record.release.as_str()).or_default().push(namespace);
    }
    let mut removed = Vec::new();
    for (namespace, record) in &records {
        let name = &record.release;
        if record.manifests.is_empty() && record.hooks.is_empty() {
            continue;
        }
        // Releases are told apart by name within an apply: one of a name, or none.
        if let Some(now) = defined.get(name.as_str()) {
            on(Progress::Warning(format!(
                "release `{name}` has a deployed revision of environment `{}` in namespace {namespace}, which now deploys it in namespace {now}: --prune-releases leaves it; to remove it, deploy it there again with `installed: false`",
                env.name
            )));
            continue;
        }
        if namespaces[name.as_str()].len() > 1 {
            on(Progress::Warning(format!(
                "release `{name}` of environment `{}` has deployed revisions in namespaces {}: --prune-releases leaves them; to remove one, deploy it there with `installed: false`",
                env.name,
                namespaces[name.as_str()].join(", ")
            )));
            continue;
        }
        let taken_by = record.manifests.iter().find_map(|m| rendered_by.get(&ObjectKey::of(m)));
        if let Some(other) = taken_by {
            on(Progress::Warning(format!(
                "release `{name}` (namespace {namespace}) is no longer in environment `{}`, but release `{other}` renders its objects (renamed?): --prune-releases leaves it, so that its delete hooks do not run against them; once `{other}` is applied, delete its records (Secrets labelled {LABEL_RELEASE}={name} in namespace {namespace})",
                env.name
            )));
            continue;
        }
        on(Progress::Status(format!(
            "release `{name}` (namespace {namespace}) is no longer in environment `{}`: removing what its revision {} holds (--prune-releases)",
            env.name, record.revision
        )));
        record.register_secret_values(redactor);
        removed.push(RenderedRelease::removed(name, namespace));
    }
    Ok(removed)
}
