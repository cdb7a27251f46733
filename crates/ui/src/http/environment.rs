//! The environment's page (its plan, health and drift) and the live updates of a page.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::HeaderMap;
use weaver_cluster::Waited;
use weaver_engine::action::watch::{self, WatchOptions};
use weaver_engine::action::{Context, Progress};

use super::{Answer, EnvSource, Ran, Server, keep, refusal_status, run};
use crate::pages::{self, Chrome};
use crate::view;

impl Server {
    /// A local environment: `weaver status` (with the objects' dependents and events),
    /// `weaver diff` and `weaver drift` of it, the cluster read once for all three.
    pub(super) async fn environment(
        self: &Arc<Self>,
        session: &str,
        env: &str,
        source: EnvSource,
        query: &HashMap<String, String>,
    ) -> Answer {
        let me = self.clone();
        let env_name = env.to_string();
        let path = source.path.clone();
        let results = run(async move |on| {
            let (o, s) = (&me.options, &source);
            // A working tree's render is kept while its files stay as they were, and its
            // connections between views. What a controller's EnvironmentSync applied is read at
            // a commit, as that sync's account: nothing kept, so no view shares another
            // account's client.
            let local = s.rev.is_none();
            // A tenant's page renders in its turn, as its reconciles do: page views cannot start
            // renders (and their workers) beside the queue.
            let _turn = match &s.turns {
                Some((shared, tenant)) => {
                    let revision = s.rev.as_deref().unwrap_or_default();
                    Some(shared.renders.turn(tenant, &env_name, revision, &s.limits).await?)
                }
                None => None,
            };
            let servers = match local {
                true => me.servers.again(),
                false => weaver_cluster::SharedServers::new(o.concurrency)?,
            };
            let of = view::Source {
                repo: &s.repo,
                rev: s.rev.as_deref(),
                env: &env_name,
                connect: &s.connect,
                keys: &s.keys,
                charts: s.charts.clone(),
                prune_releases: s.prune_releases.clone(),
                limits: &s.limits,
                concurrency: o.concurrency,
                renders: local.then_some(&me.renders),
                servers,
                log: &*o.on,
            };
            view::environment(&of, Context::new(&o.redactor, on)).await
        })
        .await;
        let (view::EnvironmentView { cluster, status, planned, drift }, warnings) = match results.and_then(Ran::result)
        {
            Ok(results) => results,
            Err(err) => return self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err),
        };
        // An environment none of whose parts could be read answers as its first error.
        if let (Err(err), Err(_), Err(_)) = (&status, &planned, &drift) {
            return self.error_page(session, refusal_status(err, StatusCode::INTERNAL_SERVER_ERROR), err);
        }
        let started = std::time::Instant::now();
        let mut errors = Vec::new();
        let status = keep(status, &mut errors, &self.options.redactor);
        let planned = keep(planned, &mut errors, &self.options.redactor);
        let drift = keep(drift, &mut errors, &self.options.redactor);
        let context =
            weaver_engine::report::DiffContext { environment: env, mode: "client", provenance: None, base: None };
        let layout = pages::Layout::parse(query.get("diff").map(String::as_str));
        let page = pages::EnvironmentPage {
            name: env,
            status: status.as_ref().map(|s| weaver_engine::report::json::StatusReport::new(&s.report)),
            plan: planned.as_ref().map(|p| {
                let report = weaver_engine::report::json::DiffReport::new(&p.plan, &context, &self.options.redactor);
                pages::DiffView::new(report, layout)
            }),
            drift: drift.as_ref().map(weaver_engine::report::json::DriftReport::new),
            events: status.as_ref().map_or(&[], |s| &s.events),
        };
        let live = Some(format!("{path}/live"));
        let chrome = Chrome {
            server: pages::cluster_name(&cluster),
            live,
            env_path: path,
            ..self.chrome(session, errors, warnings)
        };
        let page = self.page("environment.html", &chrome, page);
        (self.options.on)(Progress::Phase("the environment page's HTML", started.elapsed()));
        page
    }

    /// The header of an environment's page: the cluster the environment's context reaches.
    pub(super) fn env_chrome(
        &self,
        session: &str,
        cluster: &weaver_cluster::ClusterInfo,
        warnings: Vec<String>,
    ) -> Chrome {
        Chrome { server: pages::cluster_name(cluster), ..self.chrome(session, Vec::new(), warnings) }
    }

    /// A page's live updates (server-sent events): the marks of where the page's watched
    /// resources stand when the browser sent none (`Last-Event-ID`), else the first change after
    /// them, or after [`pages::LIVE_WAIT`] that nothing changed. Each answer is whole: the
    /// browser asks again with the marks it ended at, so nothing between is missed.
    pub(super) async fn live(self: &Arc<Self>, headers: &HeaderMap, options: WatchOptions) -> Answer {
        let marks = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(pages::marks_of);
        let waited = run(async move |on| {
            let Some(marks) = marks else { return Ok(pages::live_event(&watch::marks(&options, on).await?, None)) };
            Ok(match watch::next_change(&options, &marks, pages::LIVE_WAIT, on).await? {
                Waited::Changed { marks, what } => pages::live_event(&marks, Some(&what)),
                Waited::Quiet { marks } => pages::live_event(&marks, None),
                Waited::Expired => {
                    pages::live_event(&watch::marks(&options, on).await?, Some("the watch started again"))
                }
            })
        })
        .await;
        let body = match waited.and_then(|ran| ran.value) {
            Ok(events) => events,
            Err(err) => pages::live_failed(&self.options.redactor.error(&err)),
        };
        Answer { content_type: "text/event-stream; charset=utf-8", ..Answer::text(StatusCode::OK, body) }
    }
}
