//! A rollback from the pages: its confirmation, the form, and the refusals (only while the
//! EnvironmentSync is suspended, and still so when the apply takes its lock).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use weaver_core::error::{Error, Result};
use weaver_engine::action::sync::{self, GetOptions};
use weaver_engine::action::{Context, Progress};

use super::{Answer, Asked, EnvSource, Server, may_not, refusal_status, rollback_refusal, run};
use crate::auth::Auth;
use crate::pages::{self};

impl Server {
    /// A rollback's confirmation, with what else to know (`note`) before it.
    pub(super) fn confirm_rollback(
        &self,
        session: &str,
        source: &EnvSource,
        env: &str,
        release: &str,
        revision: Option<&String>,
        note: Option<String>,
    ) -> Answer {
        let Some(revision) = revision.filter(|r| r.parse::<u32>().is_ok()) else {
            return Answer::text(StatusCode::BAD_REQUEST, "a rollback names the revision to re-apply (?revision=N)\n");
        };
        let back = source.release_path(release);
        let page = pages::ConfirmPage {
            title: format!("Roll release {release} of {env} back to revision {revision}?"),
            what: pages::ROLLBACK,
            post: format!("{back}/rollback"),
            fields: vec![("revision", revision.clone())],
            button: "Roll back",
            back,
            plan: None,
            note,
        };
        self.page("confirm.html", &self.chrome(session, Vec::new(), Vec::new()), page)
    }

    /// A rollback's form, once it passed the checks: the revision it names. Else the refusal.
    pub(super) async fn rollback_form(
        &self,
        request: Request<Incoming>,
        session: &str,
    ) -> std::result::Result<u32, Answer> {
        let form = self.checked_form(request, session).await?;
        form.get("revision")
            .and_then(|r| r.parse::<u32>().ok())
            .ok_or_else(|| Answer::text(StatusCode::BAD_REQUEST, "a rollback names the revision to re-apply\n"))
    }

    /// Why a rollback of an environment EnvironmentSync `ns/name` applies is refused now, as
    /// the controller's watch last saw it (see [`Server::still_suspended`]).
    pub(super) async fn suspended_for_rollback(self: &Arc<Self>, ns: &str, name: &str) -> Result<()> {
        rollback_refusal(&self.read_sync(ns, name).await?, ns, name)
    }

    /// Why `user` may not roll back `release` of environment `env`, which EnvironmentSync
    /// `ns/name` applies: the SubjectAccessReview its POST is asked says no (the error is
    /// forbidden), or the EnvironmentSync is not suspended. Err: the API server could not be asked.
    pub(super) async fn rollback_refused(
        self: &Arc<Self>,
        auth: &Auth,
        user: &weaver_cluster::Subject,
        (ns, name): (&str, &str),
        env: &str,
        release: &str,
    ) -> Result<Option<Error>> {
        if !auth.may_act(user, "rollback", ns, name).await? {
            let posted = ["environments", env, "releases", release, "rollback"];
            return Ok(Some(may_not(&user.user, Asked::Act("rollback"), ns, name, &posted).as_forbidden()));
        }
        Ok(self.suspended_for_rollback(ns, name).await.err())
    }

    /// What a rollback through EnvironmentSync `ns/name` checks under the environment's lock
    /// before it writes: the EnvironmentSync, read again from the API server (the watch may
    /// not have seen a resume yet), is still suspended. Its reconciles apply under the same
    /// lock, so one a resume starts after this check applies after the rollback: a resume
    /// between the page's check and the lock is refused here, not undone by the next reconcile.
    pub(super) fn still_suspended(&self, ns: &str, name: &str) -> weaver_engine::action::apply::PlanCheck {
        let (ns, name) = (ns.to_string(), name.to_string());
        let options =
            GetOptions { target: self.target(&ns), all_namespaces: false, selector: None, name: Some(name.clone()) };
        weaver_engine::action::apply::PlanCheck(Arc::new(move |_| {
            let (options, ns, name) = (options.clone(), ns.clone(), name.clone());
            Box::pin(async move {
                // Named, it is read alone, or not found is the error.
                let read = sync::get(&options, &|_| {}).await?.syncs;
                let still = read.iter().try_for_each(|sync| rollback_refusal(sync, &ns, &name));
                still.map_err(|err| err.context("read again under the environment's lock"))
            })
        }))
    }

    /// A rollback: `weaver rollback --env ENV RELEASE REVISION`, with its defaults, of the
    /// environment `source` reads, applied with `settings` (its applier recorded; None: this process).
    pub(super) async fn roll_back(
        self: &Arc<Self>,
        session: &str,
        env: &str,
        release: &str,
        revision: u32,
        source: EnvSource,
        settings: weaver_engine::action::apply::Settings,
    ) -> Answer {
        let back = source.release_path(release);
        let applier = settings.applier.clone();
        let options = weaver_engine::action::rollback::RollbackOptions {
            repo: source.repo.clone(),
            rev: source.rev.clone(),
            env: env.to_string(),
            release: release.to_string(),
            revision: Some(revision),
            connect: source.connect.clone(),
            settings,
            // A working tree's environment page's watches then hold what the rollback wrote
            // when next read; a controller's rollback runs as its sync's account, apart.
            servers: source.rev.is_none().then(|| self.servers.again()),
        };
        let me = self.clone();
        let done = run(async move |on| {
            // The mirror the environment is read from stays while the rollback reads it.
            let _source = source;
            // Nothing interrupts a rollback the page asked for: it runs to its end. Its flag is
            // its own all the same, as losing its lock sets it.
            let interrupted = AtomicBool::new(false);
            let cx = Context::new(&me.options.redactor, on).interruptible(&interrupted);
            let applied = weaver_engine::action::rollback::rollback(&options, cx).await?;
            let totals = applied.report.totals();
            match applied.lock_lost {
                Some(lost) => Err(lost),
                None if totals.failed > 0 => Err(Error::new(format!(
                    "the rollback to revision {revision} failed for {} object(s); the release's history records it",
                    totals.failed
                ))),
                None => Ok(()),
            }
        })
        .await;
        match done.and_then(|ran| self.told(ran)) {
            Ok(()) => {
                let by = applier.map(|applier| format!(" ({applier})")).unwrap_or_default();
                (self.options.on)(Progress::Status(format!(
                    "ui: rolled release {release} of environment {env} back to revision {revision}{by}"
                )));
                Answer::see_other(format!("{back}?done=rollback"))
            }
            Err(err) => self.error_page(session, refusal_status(&err, StatusCode::CONFLICT), &err),
        }
    }
}
