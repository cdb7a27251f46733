//! An object's page and a release's page.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::StatusCode;
use weaver_core::error::{Error, Result};
use weaver_engine::action::Context;

use super::{Answer, EnvSource, Ran, Server, refusal_status, run};
use crate::pages::{self, Chrome};

impl Server {
    /// One live object of the environment's cluster (`?apiVersion=&kind=&namespace=&name=`),
    /// shown in the controller only when `user` may get it.
    pub(super) async fn object(
        self: &Arc<Self>,
        session: &str,
        user: Option<&weaver_cluster::Subject>,
        env: &str,
        source: EnvSource,
        query: &HashMap<String, String>,
    ) -> Answer {
        let given = |key: &str| query.get(key).filter(|v| !v.is_empty()).cloned();
        let (Some(api_version), Some(kind), Some(name)) = (given("apiVersion"), given("kind"), given("name")) else {
            return Answer::text(
                StatusCode::BAD_REQUEST,
                "an object is named by ?apiVersion=&kind=&name= (and &namespace=)\n",
            );
        };
        let options = weaver_engine::action::object::ObjectOptions {
            repo: source.repo.clone(),
            rev: source.rev.clone(),
            env: env.to_string(),
            connect: source.connect.clone(),
            api_version,
            kind,
            namespace: given("namespace"),
            name,
            keys: source.keys.clone(),
            limits: source.limits.clone(),
        };
        let wanted = options.clone();
        // In the controller, the user must be allowed to get the object before anything of it is
        // read (or decrypted): asked on this runtime, where the controller's client lives.
        let may_get = match (&self.auth, user) {
            (Some(_), Some(user)) => {
                let (server, user, main) = (self.clone(), user.clone(), tokio::runtime::Handle::current());
                let (ns, name, kind) =
                    (wanted.namespace.clone().unwrap_or_default(), wanted.name.clone(), wanted.kind.clone());
                Some(move |resource: &kube::discovery::ApiResource| {
                    let (server, user, ns, name, kind) =
                        (server.clone(), user.clone(), ns.clone(), name.clone(), kind.clone());
                    let (group, plural) = (resource.group.clone(), resource.plural.clone());
                    let asked = main.spawn(async move {
                        let Some(auth) = server.auth.as_ref() else {
                            return Err(Error::new("this server signs nobody in: no user to ask for").as_forbidden());
                        };
                        if auth.may_on(&user, "get", &group, &plural, &ns, &name).await? {
                            return Ok(());
                        }
                        let what = if group.is_empty() { plural } else { format!("{plural}.{group}") };
                        Err(Error::new(format!("{} may not get {kind} {name}", user.user))
                            .with_help(format!("that needs get on {what} in namespace {ns}"))
                            .as_forbidden())
                    });
                    let asked = async move {
                        asked.await.map_err(|err| Error::new(format!("asking whether the user may: {err}")))?
                    };
                    Box::pin(asked) as futures::future::BoxFuture<'static, Result<()>>
                })
            }
            _ => None,
        };
        let me = self.clone();
        let found = run(async move |on| {
            let cx = Context::new(&me.options.redactor, on);
            let may_get = may_get.as_ref().map(|f| f as weaver_engine::action::object::MayGet<'_>);
            weaver_engine::action::object::object(&options, may_get, cx).await
        })
        .await;
        match found.and_then(Ran::result) {
            Ok(((cluster, Some(live)), warnings)) => {
                let page = pages::ObjectPage::new(env, &wanted, &live);
                let chrome = Chrome { env_path: source.path.clone(), ..self.env_chrome(session, &cluster, warnings) };
                self.page("object.html", &chrome, page)
            }
            Ok(((_, None), _)) => self.error_page(
                session,
                StatusCode::NOT_FOUND,
                &Error::new(format!(
                    "{} {} not found in the cluster",
                    wanted.kind,
                    wanted.namespace.map_or(wanted.name.clone(), |ns| format!("{ns}/{}", wanted.name))
                )),
            ),
            Err(err) => self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err),
        }
    }

    /// A release's recorded revisions, as `weaver history` reads them, each with what it changed.
    pub(super) async fn release(
        self: &Arc<Self>,
        session: &str,
        env: &str,
        source: EnvSource,
        release: &str,
        rollback: pages::RollbackOffer,
        query: &HashMap<String, String>,
    ) -> Answer {
        let options = weaver_engine::action::history::HistoryOptions {
            repo: source.repo.clone(),
            rev: source.rev.clone(),
            env: env.to_string(),
            release: release.to_string(),
            connect: source.connect.clone(),
        };
        let found = run(async move |on| {
            let (repo, rev) = (&options.repo, options.rev.as_deref());
            let cluster = weaver_engine::action::cluster_of(repo, rev, &options.env, options.connect.clone()).await?;
            Ok((weaver_engine::action::history::history(&options, on).await?, cluster))
        })
        .await;
        match found.and_then(Ran::result) {
            Ok(((h, cluster), warnings)) => {
                let history = weaver_engine::report::json::HistoryReport::new(&h.env, &h.release, &h.records);
                let layout = pages::Layout::parse(query.get("diff").map(String::as_str));
                let plans = weaver_engine::action::history::changes(&h.records);
                let context = weaver_engine::report::DiffContext {
                    environment: env,
                    mode: "client",
                    provenance: None,
                    base: None,
                };
                let changes = plans
                    .iter()
                    .map(|plan| {
                        pages::DiffView::new(
                            weaver_engine::report::json::DiffReport::new(plan, &context, &self.options.redactor),
                            layout,
                        )
                    })
                    .collect();
                let done = query.get("done").and_then(|d| pages::done_message(d));
                let page = pages::ReleasePage { history, changes, layout, done, rollback };
                let chrome = Chrome { env_path: source.path.clone(), ..self.env_chrome(session, &cluster, warnings) };
                self.page("release.html", &chrome, page)
            }
            Err(err) => self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err),
        }
    }
}
