//! The fleet page, an EnvironmentSync's page and its actions (reconcile, suspend, resume,
//! approve), each confirmed on a page of its own with the session's CSRF token.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use subtle::ConstantTimeEq;
use weaver_controllers::http::{BodyError, read_body};
use weaver_core::error::{Error, Result};
use weaver_engine::action::Progress;
use weaver_engine::action::sync::{self, ApproveOptions, GetOptions, ReconcileOptions, SuspendOptions, Target};

use super::{Answer, MAX_FORM, Ran, Server, environments, keep, refusal_status, run};
use crate::auth::Auth;
use crate::pages::{self, Chrome, Filter, SyncState};

impl Server {
    pub(super) async fn fleet(
        self: &Arc<Self>,
        session: &str,
        user: Option<&weaver_cluster::Subject>,
        query: &HashMap<String, String>,
    ) -> Answer {
        let label = query.get("label").map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
        let state = query.get("state").filter(|s| !s.is_empty());
        let mut errors = Vec::new();
        let state = match state.map(|s| SyncState::parse(s).ok_or(s)) {
            Some(Err(word)) => {
                errors
                    .push(format!("no state `{word}`: the states are {}", SyncState::ALL.map(|s| s.name()).join(", ")));
                None
            }
            Some(Ok(state)) => Some(state),
            None => None,
        };
        let filter = Filter { label, state };
        if let (Some(auth), Some(user)) = (&self.auth, user) {
            let syncs = keep(
                self.readable_syncs(auth, user, filter.label.as_deref()).await,
                &mut errors,
                &self.options.redactor,
            );
            let chrome = self.chrome(session, errors, Vec::new());
            return self.page("fleet.html", &chrome, pages::fleet(&filter, &syncs.unwrap_or_default(), &[]));
        }
        let me = self.clone();
        let selector = filter.label.clone();
        let ran = run(async move |on| {
            let options = GetOptions {
                target: Target { connect: me.options.connect.clone(), namespace: me.options.namespace.clone() },
                all_namespaces: me.options.namespace.is_none(),
                selector: selector.clone(),
                name: None,
            };
            let syncs = sync::get(&options, on).await.map(|listing| listing.syncs);
            (syncs, environments(&me.options.repo, selector.as_deref()))
        })
        .await;
        let Ran { value: (syncs, environments), warnings } =
            ran.unwrap_or_else(|err| Ran { value: (Err(err), Ok(Vec::new())), warnings: Vec::new() });
        let syncs = keep(syncs, &mut errors, &self.options.redactor).unwrap_or_default();
        let environments = keep(environments, &mut errors, &self.options.redactor).unwrap_or_default();
        let chrome = self.chrome(session, errors, warnings);
        self.page("fleet.html", &chrome, pages::fleet(&filter, &syncs, &environments))
    }

    /// The controller's EnvironmentSyncs the label selects that `user` may read, from its watch.
    pub(super) async fn readable_syncs(
        &self,
        auth: &Auth,
        user: &weaver_cluster::Subject,
        label: Option<&str>,
    ) -> Result<Vec<weaver_controllers::gitops::EnvironmentSync>> {
        let selector = weaver_project::Selector::parse_flag(&Vec::from_iter(label), "the label filter")?;
        let selected: Vec<_> = auth
            .syncs
            .all()
            .into_iter()
            .filter(|sync| selector.matches(sync.metadata.labels.as_ref().unwrap_or(&Default::default())))
            .collect();
        let namespace =
            |sync: &weaver_controllers::gitops::EnvironmentSync| sync.metadata.namespace.clone().unwrap_or_default();
        // The question for every name of a namespace once per namespace, before the syncs of
        // a namespace asked at once would each ask it (its answer not kept yet).
        let namespaces: std::collections::BTreeSet<String> = selected.iter().map(|sync| namespace(sync)).collect();
        let every = namespaces.iter().map(|ns| auth.may_read(user, ns, ""));
        futures::future::try_join_all(every).await?;
        let asked = selected.iter().map(|sync| {
            let ns = namespace(sync);
            async move { auth.may_read(user, &ns, sync.metadata.name.as_deref().unwrap_or_default()).await }
        });
        let allowed = futures::future::try_join_all(asked).await?;
        Ok(selected.into_iter().zip(allowed).filter(|(_, allowed)| *allowed).map(|(sync, _)| (*sync).clone()).collect())
    }

    /// One EnvironmentSync, read as `weaver sync get NAME` reads it (the controller: from its watch).
    pub(super) async fn read_sync(
        self: &Arc<Self>,
        ns: &str,
        name: &str,
    ) -> Result<weaver_controllers::gitops::EnvironmentSync> {
        if let Some(auth) = &self.auth {
            let found = auth.syncs.get(ns, name).map(|sync| (*sync).clone());
            return found.ok_or_else(|| Error::new(format!("EnvironmentSync {ns}/{name} not found")).as_not_found());
        }
        let options =
            GetOptions { target: self.target(ns), all_namespaces: false, selector: None, name: Some(name.to_string()) };
        let listing = run(async move |on| sync::get(&options, on).await).await?.value?;
        listing
            .syncs
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(format!("EnvironmentSync {ns}/{name} not found")).as_not_found())
    }

    /// An EnvironmentSync's page; in the controller, its actions offered only to a `user` who
    /// may take them (their POSTs' SubjectAccessReview), the others told why not.
    pub(super) async fn sync(
        self: &Arc<Self>,
        session: &str,
        user: Option<&weaver_cluster::Subject>,
        ns: &str,
        name: &str,
        done: Option<&String>,
    ) -> Answer {
        // A release's rollback is offered on its own page.
        let offered: Vec<&'static str> =
            crate::auth::ACTIONS.into_iter().filter(|action| *action != "rollback").collect();
        let actions = match (&self.auth, user) {
            (Some(auth), Some(user)) => {
                let asked = offered.iter().map(|action| auth.may_act(user, action, ns, name));
                match futures::future::try_join_all(asked).await {
                    Ok(allowed) => {
                        let (may, may_not): (Vec<_>, Vec<_>) =
                            offered.into_iter().zip(allowed).partition(|(_, allowed)| *allowed);
                        let may_not: Vec<&str> = may_not.into_iter().map(|(action, _)| action).collect();
                        let refused = (!may_not.is_empty()).then(|| refused_actions(&user.user, &may_not, ns, name));
                        (may.into_iter().map(|(action, _)| action).collect(), refused)
                    }
                    Err(err) => return self.error_page(session, StatusCode::SERVICE_UNAVAILABLE, &err),
                }
            }
            _ => (offered, None),
        };
        match self.read_sync(ns, name).await {
            Ok(found) => {
                let done = done.and_then(|d| pages::done_message(d));
                let live = Some(format!("{}/live", pages::sync_path(ns, name)));
                let chrome = Chrome { live, ..self.chrome(session, Vec::new(), Vec::new()) };
                self.page("sync.html", &chrome, pages::sync(&found, done, actions))
            }
            Err(err) => self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err),
        }
    }

    pub(super) async fn confirm(
        self: &Arc<Self>,
        session: &str,
        ns: &str,
        name: &str,
        action: &str,
        digest: Option<&String>,
    ) -> Answer {
        let Some((what, button)) = pages::sync_action(action) else {
            return Answer::text(StatusCode::NOT_FOUND, "no such action: reconcile, suspend, resume or approve\n");
        };
        if action == "approve" && digest.is_none() {
            return Answer::text(
                StatusCode::BAD_REQUEST,
                "an approval names the digest of the plan shown (?digest=)\n",
            );
        }
        let found = match self.read_sync(ns, name).await {
            Ok(found) => found,
            Err(err) => return self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err),
        };
        // The plan shown is the one the digest names; another one waiting is not shown as it.
        let plan = found
            .status
            .as_ref()
            .and_then(|s| s.pending_plan.as_ref())
            .filter(|plan| digest.is_some_and(|d| *d == plan.digest));
        let back = pages::sync_path(ns, name);
        let page = pages::ConfirmPage {
            title: format!("{button} EnvironmentSync {ns}/{name}?"),
            what,
            post: format!("{back}/{action}"),
            fields: digest.map(|d| ("digest", d.clone())).into_iter().collect(),
            button,
            back,
            plan,
            note: None,
        };
        self.page("confirm.html", &self.chrome(session, Vec::new(), Vec::new()), page)
    }

    /// An action's POST: from this server's own page (Origin, Sec-Fetch-Site), with the
    /// session's CSRF token; done as `weaver sync` does it, told as the CLI tells it.
    pub(super) async fn act(
        self: &Arc<Self>,
        request: Request<Incoming>,
        session: &str,
        ns: &str,
        name: &str,
        action: &str,
    ) -> Answer {
        if pages::sync_action(action).is_none() {
            return Answer::text(StatusCode::NOT_FOUND, "no such action: reconcile, suspend, resume or approve\n");
        }
        let form = match self.checked_form(request, session).await {
            Ok(form) => form,
            Err(refused) => return refused,
        };
        let target = self.target(ns);
        let name = name.to_string();
        let digest = form.get("digest").cloned();
        let done = match (action, digest) {
            ("approve", None) => {
                return Answer::text(StatusCode::BAD_REQUEST, "an approval names the digest of the plan shown\n");
            }
            ("approve", Some(digest)) => {
                // In the controller, its signed-in user approves (the API server said they may),
                // never the controller itself; `weaver ui`'s approver is the kubeconfig's user, as
                // the CLI's.
                let approver = match &self.auth {
                    Some(auth) => match auth.name_of(session) {
                        Some(user) => Some(user),
                        None => return Answer::text(StatusCode::UNAUTHORIZED, "sign in first: /sign-in\n"),
                    },
                    None => None,
                };
                let options = ApproveOptions { target, name: name.clone(), digest: Some(digest.clone()), approver };
                run(async move |on| sync::approve(&options, &|_, _| Ok(true), on).await.map(|_| ()))
                    .await
                    .map(|ran| self.told(ran).map(|()| format!("approved the plan {digest} of")))
            }
            ("reconcile", _) => {
                let options = ReconcileOptions { target, name: name.clone(), wait: None };
                run(async move |on| sync::reconcile(&options, on).await.map(|_| ()))
                    .await
                    .map(|ran| self.told(ran).map(|()| "asked for a reconcile of".to_string()))
            }
            (_, _) => {
                let suspend = action == "suspend";
                let options = SuspendOptions { target, name: name.clone(), suspend };
                let what = if suspend { "suspended" } else { "resumed" };
                run(async move |on| sync::suspend(&options, on).await.map(|_| ()))
                    .await
                    .map(|ran| self.told(ran).map(|()| what.to_string()))
            }
        };
        match done.and_then(|done| done) {
            Ok(what) => {
                let who = self.auth.as_ref().and_then(|auth| auth.name_of(session));
                let who = who.map(|user| format!(" (for {user})")).unwrap_or_default();
                (self.options.on)(Progress::Status(format!("ui: {what} EnvironmentSync {ns}/{name}{who}")));
                Answer::see_other(format!("{}?done={action}", pages::sync_path(ns, &name)))
            }
            // Refused by the cluster for the user's rights (403), or by the action (a plan that
            // changed, nothing waiting) or the cluster for another reason (409).
            Err(err) => self.error_page(session, refusal_status(&err, StatusCode::CONFLICT), &err),
        }
    }

    /// An action's form, once the request passed the checks: from this server's own page
    /// (Origin, Sec-Fetch-Site), with the session's CSRF token. Else the refusal.
    pub(super) async fn checked_form(
        &self,
        request: Request<Incoming>,
        session: &str,
    ) -> std::result::Result<HashMap<String, String>, Answer> {
        if !self.same_origin(request.headers()) {
            return Err(Answer::text(StatusCode::FORBIDDEN, "refused: the request comes from another site\n"));
        }
        let form = match read_body(request.into_body(), MAX_FORM, &self.options.http_limits).await {
            Ok(body) => form_urlencoded::parse(&body).into_owned().collect::<HashMap<String, String>>(),
            Err(BodyError::TimedOut(_)) => {
                return Err(Answer::text(StatusCode::REQUEST_TIMEOUT, "the form did not arrive in time\n"));
            }
            Err(_) => return Err(Answer::text(StatusCode::PAYLOAD_TOO_LARGE, "the form is larger than an action's\n")),
        };
        let expected = self.csrf(session);
        let given = form.get("csrf").map(String::as_bytes).unwrap_or_default();
        if !bool::from(given.ct_eq(expected.as_bytes())) {
            return Err(Answer::text(
                StatusCode::FORBIDDEN,
                "refused: the form's CSRF token is missing or not this session's (reload the page)\n",
            ));
        }
        Ok(form)
    }
}

/// Why the sync page offers not all actions: the verbs `user` lacks there.
fn refused_actions(user: &str, actions: &[&str], ns: &str, name: &str) -> String {
    let list = |last_word: &str| match actions {
        [many @ .., last] if !many.is_empty() => format!("{} {last_word} {last}", many.join(", ")),
        _ => actions.join(""),
    };
    let verbs = if actions.len() == 1 { "the verb" } else { "the verbs" };
    format!(
        "{user} may not {} EnvironmentSync {ns}/{name}: that needs {verbs} {} on environmentsyncs.weaver.example.com \
         in namespace {ns}",
        list("or"),
        list("and")
    )
}
