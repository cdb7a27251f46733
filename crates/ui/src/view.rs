//! What an environment's page shows, read at once: `weaver status` of it (with the objects'
//! dependents and events), `weaver diff` and `weaver drift`, the cluster read once for all
//! three (the plan's observation, which status and drift judge).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use weaver_cluster::{ClusterInfo, ConnectOptions, SharedServers};
use weaver_core::error::Result;
use weaver_core::limits::RenderLimits;
use weaver_engine::action::drift::{DriftOptions, drift_observed};
use weaver_engine::action::plan::{Against, PlanOptions, Planned, plan_observing};
use weaver_engine::action::render::{IfEmpty, RenderOptions, Selection};
use weaver_engine::action::renders::Renders;
use weaver_engine::action::status::{Detailed, status_in_detail};
use weaver_engine::action::{Context, Keys, OnProgress, Progress, PruneReleases};

/// Where an environment is read from, and as whom.
pub struct Source<'a> {
    pub repo: &'a Path,
    /// The commit to read; None: the working tree.
    pub rev: Option<&'a str>,
    pub env: &'a str,
    pub connect: &'a ConnectOptions,
    pub keys: &'a Keys,
    pub charts: weaver_source::charts::Archives,
    pub prune_releases: PruneReleases,
    /// The bounds of its render.
    pub limits: &'a RenderLimits,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The renders kept from earlier views, if any are kept.
    pub renders: Option<&'a Renders>,
    /// The connections this view reads through.
    pub servers: SharedServers,
    /// The server's log, told how long each phase took (`weaver ui -vv`).
    pub log: OnProgress<'a>,
}

/// An environment's page: each part read, or why it could not be.
pub struct EnvironmentView {
    /// The cluster the environment's context reaches.
    pub cluster: ClusterInfo,
    pub status: Result<Detailed>,
    pub planned: Result<Planned>,
    pub drift: Result<weaver_plan::release::drift::Report>,
}

/// Plans environment `of.env` against its cluster, then judges the plan's observation for its
/// health and drift: one LIST per (resource, namespace) for all three. A plan that fails leaves
/// status and drift to read the cluster themselves, so that a broken working tree still shows
/// what runs.
pub async fn environment(of: &Source<'_>, cx: Context<'_>) -> Result<EnvironmentView> {
    let started = Instant::now();
    let heard = |progress: Progress<'_>| match progress {
        Progress::Phase(..) => (of.log)(progress),
        other => (cx.on)(other),
    };
    let cx = Context { on: &heard, ..cx };
    let servers = of.servers.clone();
    let mut selection = Selection {
        env: of.env.to_string(),
        releases: Vec::new(),
        selectors: Vec::new(),
        changed_since: None,
        repo: of.repo.to_path_buf(),
        rev: of.rev.map(str::to_string),
        loaded: None,
        project: None,
        // A page plans and reads: it writes no record.
        revision: None,
    };
    let plan = PlanOptions {
        render: RenderOptions {
            selection: selection.clone(),
            keys: of.keys.clone(),
            if_empty: IfEmpty::Warn,
            validate: weaver_validate::Mode::Warn,
            overrides: Default::default(),
            charts: of.charts.clone(),
            limits: of.limits.clone(),
        },
        against: Against::Cluster(of.connect.clone()),
        server_side: false,
        concurrency: of.concurrency,
        prune_releases: of.prune_releases.clone(),
        servers: Some(servers.clone()),
    };
    let (planned, observed) = match plan_observing(&plan, of.renders, cx).await {
        Ok((planned, observed)) => {
            // The environment as the plan loaded it: read and parsed once.
            selection.loaded = Some(Arc::clone(&planned.env));
            (Ok(planned), observed)
        }
        Err(err) => (Err(err), None),
    };
    // The plan connected as the page would say; without it, read from the kubeconfig (an
    // environment that does not exist is this page's error).
    let cluster = match &observed {
        Some(observed) => observed.cluster.info.clone(),
        None => weaver_engine::action::cluster_of(of.repo, of.rev, of.env, of.connect.clone()).await?,
    };
    let observe = DriftOptions {
        selection,
        connect: of.connect.clone(),
        concurrency: of.concurrency,
        servers: Some(servers),
        keys: of.keys.clone(),
        // A page view is no run of `weaver drift`: nobody is notified.
        notify: false,
    };
    // Judged at once on two threads, each driving its future through the process's runtime
    // (their reads go through the shared connections and watches): most of it is CPU work.
    let observed = observed.as_ref();
    let (status, drift) = std::thread::scope(|scope| {
        let status = scope.spawn(|| weaver_engine::action::block_on(status_in_detail(&observe, observed, cx.on)));
        let drift = scope.spawn(|| weaver_engine::action::block_on(drift_observed(&observe, observed, cx)));
        (joined(status), joined(drift))
    });
    (cx.on)(Progress::Phase("the environment page's reads", started.elapsed()));
    Ok(EnvironmentView { cluster, status, planned, drift })
}

/// What a scoped thread returned; its panic goes on in this thread.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread.join().unwrap_or_else(|panicked| std::panic::resume_unwind(panicked))
}
