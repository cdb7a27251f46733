//! What an EnvironmentSync last applied, read as its reconcile reads it (its account, its
//! Secrets, the git cache or the artifact cache), for the UI's pages of its environments.

use std::path::PathBuf;
use std::sync::Arc;

use kube::ResourceExt;

use super::api::{EnvironmentSync, Reason, RefKind};
use super::plan::{self, Settings as Spec};
use super::reconcile::credentials::{chart_pulls, cluster_for, keys_for, tenant_client};
use super::reconcile::{Fresh, Shared, fetch_source, prune_releases, weaver_repository};
use weaver_cluster::GivenCluster;
use weaver_engine::action::{Keys, PruneReleases};
use weaver_secrets::Redactor;
use weaver_source::Fetched;
use weaver_source::artifacts::Wanted;
use weaver_source::charts::Archives;
use weaver_source::charts::oci::Artifact;

/// What the UI reads an EnvironmentSync's environments with: its source at the commit it last
/// applied, the cluster it applies to as its account, its decryption keys and the remote
/// charts; each as a reconcile gets it (the git cache's mirror, fetched only when it lacks the
/// commit), so the pages show what the controller applied.
pub struct Applied {
    pub fetched: Fetched,
    /// The weaver repository in `fetched`'s mirror (see [`weaver_repository`]).
    pub repository: PathBuf,
    pub given: GivenCluster,
    pub keys: Keys,
    pub charts: Archives,
    pub prune_releases: PruneReleases,
    /// The bounds its reconcile renders within (a tenant's repository is not trusted).
    pub limits: weaver_core::limits::RenderLimits,
}

/// What `sync` last applied, read as its reconcile reads it: None when it has applied nothing
/// yet, Err (reason, message) when what it applied cannot be read (the account, the Secrets,
/// the fetch). The Secrets' values it reads (the charts' credentials) are registered with
/// `redactor`, the one the pages are redacted with, as a reconcile registers them with its own.
pub async fn applied(
    sync: &EnvironmentSync,
    shared: &Shared,
    redactor: &Redactor,
) -> Result<Option<Applied>, (Reason, String)> {
    let namespace = sync.namespace().unwrap_or_default();
    let Some(commit) = sync.status.as_ref().and_then(|s| s.last_applied_revision.clone()) else {
        return Ok(None);
    };
    // A suspended EnvironmentSync still shows what it applied.
    let mut shown = sync.clone();
    shown.spec.suspend = false;
    let spec = match plan::gate(&shown, shared.default_account.as_deref()) {
        plan::Gate::Go(spec) => {
            let source = match spec.source {
                plan::Fetching::Git(..) => plan::Fetching::Git(RefKind::Commit, commit),
                // The digest applied, whatever the tag or range chose since (its signature
                // checked again with `spec.source.oci.verify`).
                plan::Fetching::Oci(wanted) => {
                    plan::Fetching::Oci(Wanted { artifact: Artifact { tag: commit, ..wanted.artifact }, semver: None })
                }
            };
            Spec { source, ..spec }
        }
        plan::Gate::Invalid { reason, message } => return Err((reason, message)),
        // Not reached (suspend was cleared above); said as the gate would say it.
        plan::Gate::Suspended => return Err((Reason::Suspended, "the EnvironmentSync is suspended".to_string())),
    };
    let tenant = tenant_client(&namespace, &spec, shared).await?;
    let pulls = Arc::new(chart_pulls(sync, &namespace, &tenant, shared, redactor).await?);
    let fresh = Fresh::Within(spec.interval);
    let (fetched, _, _) = fetch_source(sync, &namespace, &spec, &tenant, shared, &pulls, fresh).await?;
    let given = cluster_for(sync, &namespace, &spec, shared, &tenant, 1).await?;
    let keys = keys_for(sync, &namespace, &tenant).await?;
    let charts = Archives::Pulled(pulls);
    let repository = weaver_repository(sync, &fetched);
    let limits = shared.renders.limits(&namespace, spec.timeout, &shared.stopping);
    Ok(Some(Applied { fetched, repository, given, keys, charts, prune_releases: prune_releases(&spec), limits }))
}
