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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard};
    use crate::action::{connect, open_project};

    /// Environment `dev` rewritten as `file`, and the releases [`removed_releases`] finds for
    /// it after release `web` was applied in namespace `dev`, as `search` searches.
    async fn removed(fixture: &Fixture, file: &str, search: PruneReleases, heard: &Heard) -> Vec<String> {
        fixture.repo.write("environments/dev.yaml", file);
        let env = open_project(&fixture.repo.path(), None).unwrap().environment("dev").unwrap();
        let cluster = connect(fixture.connect(), &env, "pruning", heard.cx().on).await.unwrap();
        let found = removed_releases(&cluster, &env, &[], &Redactor::default(), &search, heard.cx().on).await.unwrap();
        found.into_iter().map(|release| format!("{} in {}", release.name, release.namespace)).collect()
    }

    const WITHOUT_WEB: &str = "namespace: dev\nreleases:\n  - name: api\n    chart: app\n";

    #[tokio::test(flavor = "multi_thread")]
    async fn a_release_the_environment_no_longer_has_is_found_by_its_record_and_pruned() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        let heard = Heard::default();
        assert!(removed(&fixture, WITHOUT_WEB, PruneReleases::No, &heard).await.is_empty());
        assert_eq!(removed(&fixture, WITHOUT_WEB, PruneReleases::Everywhere, &heard).await, ["web in dev"]);
        assert_eq!(
            heard.told(),
            [
                "release `web` (namespace dev) is no longer in environment `dev`: removing what its revision 1 holds (--prune-releases)"
            ]
        );
        assert_eq!(removed(&fixture, WITHOUT_WEB, PruneReleases::InEnvironment, &heard).await, ["web in dev"]);
        // An environment now elsewhere does not search namespace dev for its own releases.
        let elsewhere = WITHOUT_WEB.replace("namespace: dev", "namespace: other");
        assert!(removed(&fixture, &elsewhere, PruneReleases::InEnvironment, &heard).await.is_empty());
        fixture.repo.write("environments/dev.yaml", WITHOUT_WEB);
        let mut options = fixture.apply_options();
        options.prune_releases = PruneReleases::Everywhere;
        crate::action::apply::apply(&options, heard.cx()).await.unwrap();
        assert!(fixture.config_map("web-config").await.is_none(), "the removed release's objects stay");
        assert!(fixture.config_map("api-config").await.is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_release_moved_to_another_namespace_is_left_with_a_warning() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        let heard = Heard::default();
        let moved = "namespace: dev\nreleases:\n  - name: web\n    chart: app\n    namespace: other\n";
        assert!(removed(&fixture, moved, PruneReleases::Everywhere, &heard).await.is_empty());
        let told = heard.told();
        assert!(told.len() == 1 && told[0].contains("which now deploys it in namespace other"), "{told:?}");
    }
}
