//! Plan: the desired state against what is live, as `weaver diff` shows it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::apply::RenderedOffline;
use super::judgments::Judgments;
use super::removed::removed_releases;
use super::render::{Desired, Offline, Prepared, Quotes, RenderOptions, prepare};
use super::renders::Renders;
use super::{Context, blocking, blocking_with, connect_sharing, phase, tell_retries};
use crate::observe::{Live, Unlabelled, dry_run_apply, observe_helm, observe_reusing};
use weaver_cluster::{Cluster, ConnectOptions, SharedServers};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{ObjectKey, ObjectKeyRef};
use weaver_plan::diff::as_stored;
use weaver_plan::plan::Plan;
use weaver_plan::plan::{KeptPlans, plan_adopting, plan_against, plan_with_records};
use weaver_plan::release::record::{Record, Records};
use weaver_project::Environment;
use weaver_project::RenderedRelease;

/// What the desired state is compared with.
// One per plan, in its options: boxing `Cluster` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Against {
    /// The cluster: live objects and release records.
    Cluster(ConnectOptions),
    /// Objects read from a file (`--live-from`), offline.
    File(PathBuf),
    /// The environment rendered at another commit (`--base REV`, a pull request's target), as
    /// if that render were applied: the rendered objects before and after, without a cluster.
    Revision(String),
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub render: RenderOptions,
    pub against: Against,
    /// Ask the API server: a dry-run server-side apply of every object that differs.
    pub server_side: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Also plan the removal of the releases the environment no longer has but the cluster
    /// does (against a cluster only).
    pub prune_releases: super::removed::PruneReleases,
    /// What the environments of a fleet share per API server (requests in flight, discovery).
    pub servers: Option<SharedServers>,
}

pub struct Planned {
    pub env: Arc<Environment>,
    pub plan: Plan,
    /// The API server's URL; None against a file.
    pub server: Option<String>,
}

/// What a plan against a cluster read of it: the live objects of the releases it renders and
/// their deployed records. Status and drift of the same selection judge it instead of listing
/// again (`weaver ui`'s environment page reads the cluster once for all three).
pub struct Observed {
    pub cluster: Cluster,
    pub live: Live,
    /// The judgments kept with the render (a kept render's, `weaver ui`'s), which status and
    /// drift reuse for the releases whose reads did not change.
    pub judgments: Option<Arc<Judgments>>,
}

/// Renders (against a cluster, Helm charts with its capabilities), observes and plans.
pub async fn plan(options: &PlanOptions, cx: Context<'_>) -> Result<Planned> {
    Ok(plan_observing(options, None, cx).await?.0)
}

/// [`plan`], with what it read of the cluster (None against a file or a revision). Against a
/// cluster, the render is taken from `renders` where given: kept from an earlier plan while no
/// file it read changed.
pub async fn plan_observing(
    options: &PlanOptions,
    renders: Option<&Renders>,
    cx: Context<'_>,
) -> Result<(Planned, Option<Observed>)> {
    let (prepared, mut offline, judgments) = match (renders, &options.against) {
        (Some(renders), Against::Cluster(_)) => {
            let (renders, render) = (renders.clone(), options.render.clone());
            let (prepared, offline, judgments) = blocking_with(cx, move |cx| renders.prepared(&render, cx)).await?;
            (prepared, Some(offline), judgments)
        }
        _ => {
            let render = options.render.clone();
            (Arc::new(blocking_with(cx, move |cx| prepare(&render, cx, Quotes::Cluster)).await?), None, None)
        }
    };
    let (env, plan, observed) = match &options.against {
        Against::File(path) => {
            // Read first: Helm charts' `lookup` finds what the file has.
            let live = read_live_file(path)?;
            let Desired { env, mut rendered, .. } =
                prepared.render_blocking(Offline::LiveFrom(live.clone()), cx.on).await?;
            // The file stands for the cluster's discovery: a kind of it whose objects have a
            // namespace is namespaced.
            let scopes: HashMap<(&str, &str), bool> = live
                .iter()
                .map(|o| {
                    let key = ObjectKeyRef::of(o);
                    ((key.group, key.kind), key.namespace.is_some())
                })
                .collect();
            weaver_render::transforms::settle_scopes(&mut rendered, |group, kind| scopes.get(&(group, kind)).copied());
            prepared.warn_removed(&rendered, None, cx.on);
            let plan = plan_against(&rendered.releases, &env.name, &live)?;
            (env, plan, None)
        }
        Against::Revision(base) => {
            let Desired { env, rendered, .. } = prepared.render_blocking(Offline::Alone, cx.on).await?;
            prepared.warn_removed(&rendered, None, cx.on);
            let (render, base) = (options.render.clone(), base.clone());
            let before = blocking_with(cx, move |cx| render_at(&render, &base, cx)).await?;
            let live: Vec<Value> =
                before.iter().flat_map(|r| &r.manifests).map(|m| as_stored(m.object.clone())).collect();
            let records: Records = before.iter().map(|r| (r.name.clone(), Arc::new(applied(r, &env.name)))).collect();
            let mut releases = rendered.releases;
            // Releases the environment had at the base and no longer has: deleted, as a prune
            // would delete them.
            let gone: Vec<RenderedRelease> = before
                .iter()
                .filter(|b| !releases.iter().any(|r| r.name == b.name))
                .map(|b| RenderedRelease::removed(&b.name, &b.namespace))
                .collect();
            releases.extend(gone);
            let plan = plan_with_records(&releases, &records, &live)?;
            (env, plan, None)
        }
        Against::Cluster(connect_options) => {
            let offline = match offline.take() {
                Some(offline) => offline,
                None => prepared.render_blocking(Offline::BeforeCluster, cx.on).await?,
            };
            let (env, plan, observed) =
                against_cluster(options, connect_options, &prepared, offline, judgments, cx).await?;
            (env, plan, Some(observed))
        }
    };
    let server = observed.as_ref().map(|o| o.cluster.info.server.clone());
    Ok((Planned { env, plan, server }, observed))
}

/// What a plan against a cluster renders before it connects: the environment decrypted and
/// rendered offline. The controller renders it in its tenant's turn, which the API requests of
/// [`plan_rendered`] then do not hold.
pub fn render_offline(options: &PlanOptions, cx: Context<'_>) -> Result<RenderedOffline> {
    let prepared = prepare(&options.render, cx, Quotes::Cluster)?;
    let desired = prepared.render(Offline::BeforeCluster, cx.on)?;
    Ok(RenderedOffline { prepared: Arc::new(prepared), desired })
}

/// The rest of [`plan`] against a cluster, from what [`render_offline`] made with the same options.
pub async fn plan_rendered(options: &PlanOptions, offline: RenderedOffline, cx: Context<'_>) -> Result<Planned> {
    let Against::Cluster(connect_options) = &options.against else {
        return Err(Error::new("a plan rendered before it connects compares with a cluster, not a file or a revision"));
    };
    let RenderedOffline { prepared, desired } = offline;
    let (env, plan, observed) = against_cluster(options, connect_options, &prepared, desired, None, cx).await?;
    Ok(Planned { env, plan, server: Some(observed.cluster.info.server.clone()) })
}

/// Connects, renders Helm charts again with the cluster's capabilities and `lookup`, reads what
/// is live and plans against it.
async fn against_cluster(
    options: &PlanOptions,
    connect_options: &ConnectOptions,
    prepared: &Arc<Prepared>,
    offline: Desired,
    judgments: Option<Arc<Judgments>>,
    cx: Context<'_>,
) -> Result<(Arc<Environment>, Plan, Observed)> {
    let servers = options.servers.as_ref();
    let cluster = connect_sharing(connect_options.clone(), servers, &offline.env, "comparing with", cx.on).await?;
    let Desired { env, mut rendered, looked_up, .. } =
        prepared.for_cluster(offline, &cluster, options.concurrency, cx.on).await?;
    let server_version = prepared.server_version(&rendered, &cluster).await?;
    prepared.warn_removed(&rendered, server_version.as_deref(), cx.on);
    let search = &options.prune_releases;
    let removed = removed_releases(&cluster, &env, &rendered.releases, cx.redactor, search, cx.on).await?;
    rendered.releases.extend(removed);
    let started = Instant::now();
    let unlabelled: Unlabelled = looked_up.iter().map(|(t, listing)| (t.clone(), &listing.items[..])).collect();
    let mut live =
        observe_reusing(&cluster, &mut rendered.releases, &env.name, options.concurrency, &unlabelled).await?;
    observe_helm(&cluster, &rendered.releases, &mut live, false, options.concurrency).await?;
    phase(cx.on, "observe for the plan", started);
    let kept = judgments.clone();
    let (plan, live) = blocking(move || {
        let kept = kept.as_ref().map(|j| &j.plans as &dyn KeptPlans);
        (plan_adopting(&rendered.releases, &live.records, &live.objects, &live.helm, kept), live)
    })
    .await;
    let mut plan = plan?;
    if options.server_side {
        refine_on_server(&cluster, &mut plan, &live.objects, options.concurrency).await?;
    }
    phase(cx.on, "observe and plan", started);
    tell_retries(&cluster, cx.on);
    Ok((env, plan, Observed { cluster, live, judgments }))
}

/// The releases `options` select, rendered at `base` (checked, `--base`): none when the
/// environment does not exist there (a pull request that adds it).
fn render_at(options: &RenderOptions, base: &str, cx: Context<'_>) -> Result<Vec<RenderedRelease>> {
    let repo = &options.selection.repo;
    let commit = weaver_git::GitRepo::open(repo)?.resolve(base, "--base")?.commit.to_string();
    let env = &options.selection.env;
    if !super::open_project(repo, Some(&commit))?.environment_names()?.contains(env) {
        return Ok(Vec::new());
    }
    let mut at_base = options.clone();
    at_base.selection.rev = Some(commit);
    at_base.selection.loaded = None;
    at_base.selection.changed_since = None;
    Ok(super::render::render(&at_base, cx)?.rendered.releases)
}

/// The record an apply of `release` (rendered at the base) would have left: what the next
/// render is compared with, three ways, and what it deletes.
fn applied(release: &RenderedRelease, environment: &str) -> Record {
    let manifests: Vec<Value> = release.manifests.iter().map(|m| as_stored(m.object.clone())).collect();
    Record {
        chart: release.chart_meta.clone(),
        hooks: release.hooks.iter().map(|h| as_stored(h.object.clone())).collect(),
        values: release.values.clone(),
        ..Record::deployed(&release.name, environment, manifests)
    }
}

/// Server mode: a dry-run server-side apply of every object client mode found changed; the
/// server's answer replaces the client's merge.
async fn refine_on_server(cluster: &Cluster, plan: &mut Plan, live: &[Arc<Value>], concurrency: usize) -> Result<()> {
    let (indices, objects): (Vec<usize>, Vec<(&Value, &str)>) = plan.server_candidates().into_iter().unzip();
    let answers = dry_run_apply(cluster, &objects, concurrency).await?;
    let answers: Vec<_> =
        indices.into_iter().zip(answers).filter_map(|(i, a)| a.map(|a| (i, a.result, a.conflict))).collect();
    plan.refine(live, answers);
    Ok(())
}

/// Reads live objects from a file: a `kubectl get -o yaml` List, or a stream of documents.
pub fn read_live_file(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::io("read live objects", path, err))?;
    let mut objects = Vec::new();
    for (index, mut document) in weaver_yaml::documents(path, &text)?.into_iter().enumerate() {
        let is_list = document.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
            && document.get("items").is_some();
        let items = if is_list {
            match document.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }
        } else {
            vec![document]
        };
        for item in items {
            let key = ObjectKey::of(&item);
            if key.kind.is_empty() || key.name.is_empty() || item.get("apiVersion").and_then(Value::as_str).is_none() {
                return Err(Error::at(
                    Location::file(path),
                    format!("document {} has an object without apiVersion, kind and metadata.name", index + 1),
                ));
            }
            objects.push(as_stored(item));
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard, Repo, failure};
    use weaver_plan::plan::{Action, Summary};

    fn options(render: RenderOptions, against: Against) -> PlanOptions {
        let prune_releases = super::super::removed::PruneReleases::No;
        PlanOptions { render, against, server_side: false, concurrency: 4, prune_releases, servers: None }
    }

    /// Each object's kind and what the plan would do with it.
    fn actions(planned: &Planned) -> Vec<(&str, Action)> {
        planned.plan.objects.iter().map(|o| (o.key.kind.as_str(), o.action)).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_plan_creates_what_is_not_applied_and_nothing_once_it_is() {
        let fixture = Fixture::start().await;
        let options = options(fixture.repo.render_options(), Against::Cluster(fixture.connect()));
        let before = plan(&options, Heard::default().cx()).await.unwrap();
        assert_eq!(actions(&before), [("ConfigMap", Action::Create), ("Deployment", Action::Create)]);
        assert_eq!(before.server.as_deref(), Some(fixture.server.url().as_str()));
        assert!(fixture.writes().iter().all(|w| w.ends_with("(dry run)")), "a plan writes nothing");
        fixture.apply().await;
        let after = plan(&options, Heard::default().cx()).await.unwrap();
        assert_eq!(after.plan.summary(), Summary { unchanged: 2, ..Summary::default() });
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_value_changed_since_the_apply_updates_its_object_in_client_and_server_mode() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        fixture.repo.greet("hi");
        let mut options = options(fixture.repo.render_options(), Against::Cluster(fixture.connect()));
        for server_side in [false, true] {
            options.server_side = server_side;
            let planned = plan(&options, Heard::default().cx()).await.unwrap();
            assert_eq!(actions(&planned), [("ConfigMap", Action::Update), ("Deployment", Action::Unchanged)]);
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn against_a_file_of_live_objects_the_plan_needs_no_cluster() {
        let repo = Repo::new();
        let live = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: dev\n  \
                    labels: {app.kubernetes.io/managed-by: weaver, weaver.example.com/release: web, weaver.example.com/environment: dev}\n\
                    data:\n  greeting: hello\n";
        repo.write("live.yaml", live);
        let options = options(repo.render_options(), Against::File(repo.path().join("live.yaml")));
        let planned = plan(&options, Heard::default().cx()).await.unwrap();
        assert_eq!(actions(&planned), [("ConfigMap", Action::Unchanged), ("Deployment", Action::Create)]);
        assert_eq!(planned.server, None);
        repo.write("live.yaml", "kind: ConfigMap\n");
        let message = failure(plan(&options, Heard::default().cx()).await);
        assert!(message.contains("document 1 has an object without apiVersion, kind and metadata.name"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_environment_the_repository_lacks_is_an_error() {
        let repo = Repo::new();
        let mut render = repo.render_options();
        render.selection.env = "prod".into();
        let message = failure(plan(&options(render, Against::File(repo.path())), Heard::default().cx()).await);
        let unknown =
            "unknown environment `prod`: environments/prod.yaml does not exist (help: known environments: dev)";
        assert_eq!(message, unknown);
    }
}
