//! HTTP for the UI, its routes here and each part of the site in a file of its own: hyper's HTTP/1 as the operator serves its endpoints
//! (`serve`), the routes, the session cookie and its CSRF token, the checks every request
//! passes (Host, and for actions Origin and the token) and the security headers of every answer.
//! In the controller (`Options::sign_in`), every page but the sign-in page needs a signed-in
//! user, and shows or does only what the API server says that user may (`auth.rs`).

mod environment;
mod objects;
mod rollback;
mod sign_in;
mod syncs;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rand::RngCore;
use weaver_core::error::{Error, Result};
use weaver_engine::action::Progress;
use weaver_engine::action::sync::Target;
use weaver_engine::action::watch::WatchOptions;
use weaver_secrets::hmac::HmacSha256;

use super::Options;
use super::auth::{self, Auth};
use super::pages::{self, Chrome, Pages};

/// The session cookie's name.
const COOKIE: &str = "weaver-ui";
/// The cookie that binds an OIDC sign-in to the browser that started it. SameSite=Lax, unlike
/// the session's Strict one: the provider's redirect back is a cross-site navigation, on
/// which a browser sends Lax cookies only.
const FLOW_COOKIE: &str = "weaver-ui-oidc";
/// The largest form read: a CSRF token and a digest, or a token to sign in with (an OIDC ID
/// token with many groups runs to a few kilobytes).
const MAX_FORM: usize = 16 * 1024;

/// Every answer's headers: no script, style or form target but this server's, never framed,
/// never cached, no referrer sent elsewhere (`same-origin`, not `no-referrer`: under
/// `no-referrer` a browser sends `Origin: null` with a form's POST, which the Origin check
/// must then refuse).
const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

struct Server {
    options: Options,
    pages: Pages,
    /// Signs sessions into CSRF tokens: a key of this process, never shown.
    key: HmacSha256,
    /// The Host headers answered: the listening address, and `localhost` at its port.
    hosts: Vec<String>,
    server_url: String,
    /// The controller's signed-in users; None for `weaver ui`.
    auth: Option<Auth>,
    /// The environments' renders, kept while no file they read changes.
    renders: weaver_engine::action::renders::Renders,
    /// The environment pages' connections to their API servers, kept between views.
    servers: weaver_cluster::SharedServers,
    /// In the controller, by EnvironmentSync (namespace, name) and environment: where the
    /// environment's releases apply, which live updates ask of the user without reading the
    /// commit again.
    release_namespaces: std::sync::Mutex<HashMap<(String, String, String), ReleaseNamespaces>>,
}

/// The namespaces an environment's releases apply to, where a user must be allowed to list
/// Pods to see it, as read at a commit.
struct ReleaseNamespaces {
    commit: String,
    namespaces: Vec<String>,
}

/// Serves the UI on `listener` until `shutdown` completes.
pub async fn serve(
    options: Options,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let address =
        listener.local_addr().map_err(|err| Error::new(format!("reading the address weaver ui listens on: {err}")))?;
    // Read once: the pages say which cluster they show.
    let (_, info) = weaver_cluster::kube_config(&options.connect).await?;
    let mut key = [0; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let server = Arc::new(Server {
        auth: options.sign_in.clone().map(Auth::new).transpose()?,
        pages: Pages::new()?,
        key: HmacSha256::new(&key),
        hosts: vec![address.to_string(), format!("localhost:{}", address.port())],
        server_url: pages::cluster_name(&info),
        renders: Default::default(),
        // Views of an environment LIST its objects once, then read them from watches.
        servers: weaver_cluster::SharedServers::new(options.concurrency)?.watching(),
        release_namespaces: Default::default(),
        options,
    });
    let limits = server.options.http_limits.clone();
    weaver_controllers::http::serve(listener, None, limits, move |request| answer(server.clone(), request), shutdown)
        .await;
    Ok(())
}

/// Where an environment's pages read it: `weaver ui`'s working tree through the kubeconfig, or
/// in the controller what an EnvironmentSync last applied, as its account.
struct EnvSource {
    repo: std::path::PathBuf,
    /// The commit read; None: the working tree.
    rev: Option<String>,
    connect: weaver_cluster::ConnectOptions,
    keys: weaver_engine::action::Keys,
    charts: weaver_source::charts::Archives,
    /// Where the plan looks for releases the environment no longer has: a controller's
    /// tenant may not list Secrets across the cluster, and prunes as its reconcile does.
    prune_releases: weaver_engine::action::PruneReleases,
    /// The bounds of its render: the controller's for a tenant's repository, none for `weaver ui`'s.
    limits: weaver_core::limits::RenderLimits,
    /// In the controller: the reconciles' shared state and the tenant (the sync's namespace),
    /// whose render queue a page's render takes a turn in, as a reconcile's does.
    turns: Option<(Arc<weaver_controllers::gitops::reconcile::Shared>, String)>,
    /// The path the environment's pages are under.
    path: String,
    /// Held while the page reads the mirror: the git cache evicts no mirror that is leased.
    _lease: Option<weaver_source::Fetched>,
}

impl EnvSource {
    /// The path of release `release`'s page.
    fn release_path(&self, release: &str) -> String {
        format!("{}/releases/{}", self.path, pages::segment(release))
    }
}

/// An answer before the security headers and the cookie are added.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: String,
    location: Option<String>,
    /// A new session id for the cookie, and how long it lasts (None: until the browser closes).
    session: Option<(String, Option<std::time::Duration>)>,
    /// The OIDC sign-in cookie's new value ([`FLOW_COOKIE`]); an empty one clears it.
    flow: Option<String>,
}

impl Answer {
    fn html(status: StatusCode, body: String) -> Answer {
        Answer { status, content_type: "text/html; charset=utf-8", body, location: None, session: None, flow: None }
    }

    fn text(status: StatusCode, body: impl Into<String>) -> Answer {
        let body = body.into();
        Answer { status, content_type: "text/plain; charset=utf-8", body, location: None, session: None, flow: None }
    }

    /// 303: after an action, the page it leads back to (reloading it repeats nothing).
    fn see_other(location: String) -> Answer {
        Answer { location: Some(location), ..Answer::text(StatusCode::SEE_OTHER, "") }
    }
}

async fn answer(
    server: Arc<Server>,
    request: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    let (session, new_session) = match cookie_of(request.headers(), COOKIE) {
        Some(session) => (session, false),
        None => (auth::new_id(), true),
    };
    let secure = auth::over_https(request.headers());
    let answer = if !server.host_allowed(request.headers()) {
        Answer::text(
            StatusCode::MISDIRECTED_REQUEST,
            format!("weaver ui answers only to http://{}/\n", server.hosts[0]),
        )
    } else {
        server.route(request, &session).await
    };
    let mut builder = Response::builder().status(answer.status).header(header::CONTENT_TYPE, answer.content_type);
    // Signing out of an OIDC session is a form whose answer redirects to the provider's
    // end-session endpoint, which `form-action` must allow.
    let provider_logout = server.auth.as_ref().and_then(|auth| auth.oidc.as_ref()?.logout_origin());
    for (name, value) in SECURITY_HEADERS {
        match (&provider_logout, name) {
            (Some(origin), "content-security-policy") => {
                let allowed = format!("form-action 'self' {origin}");
                builder = builder.header(name, value.replace("form-action 'self'", &allowed));
            }
            _ => builder = builder.header(name, value),
        }
    }
    if let Some(location) = answer.location {
        builder = builder.header(header::LOCATION, location);
    }
    let cookie = match answer.session {
        Some(set) => Some(set),
        None => new_session.then_some((session, None)),
    };
    // Over plain HTTP (loopback) a Secure cookie would never be sent back.
    let secure = if secure { "; Secure" } else { "" };
    if let Some((id, age)) = cookie {
        let age = age.map(|age| format!("; Max-Age={}", age.as_secs())).unwrap_or_default();
        builder = builder
            .header(header::SET_COOKIE, format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"));
    }
    if let Some(flow) = answer.flow {
        let age = if flow.is_empty() { 0 } else { crate::oidc::FLOW_AGE.as_secs() };
        let cookie = format!(
            "{FLOW_COOKIE}={flow}; Path={}; HttpOnly; SameSite=Lax{secure}; Max-Age={age}",
            crate::oidc::CALLBACK_PATH
        );
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    // Every value set is ASCII of our own making: the response is always valid.
    let body = server.options.redactor.redact(&answer.body).into_owned();
    Ok(builder.body(Full::new(Bytes::from(body))).expect("a valid response"))
}

/// The value of cookie `name`, when it is one this server could have made (64 hex digits).
fn cookie_of(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .find(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

/// The path's segments, percent-decoded; None when one is not UTF-8.
fn segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned()))
        .collect()
}

fn query(request: &Request<Incoming>) -> HashMap<String, String> {
    form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect()
}

impl Server {
    /// Whether the request names this server: a page of another site that rebinds a name of its
    /// own to 127.0.0.1 sends that name. The controller answers to any name its Service or
    /// Ingress has: a page of another site has no session there.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        self.auth.is_some()
            || headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| self.hosts.iter().any(|a| a == h))
    }

    fn csrf(&self, session: &str) -> String {
        hex::encode(self.key.mac(format!("csrf {session}").as_bytes()))
    }

    /// The header of a page that ran actions which failed with `errors` and warned of `warnings`.
    fn chrome(&self, session: &str, errors: Vec<String>, warnings: Vec<String>) -> Chrome {
        let user = self.auth.as_ref().and_then(|auth| auth.name_of(session));
        let (server, csrf) = (self.server_url.clone(), self.csrf(session));
        Chrome { server, errors, warnings, csrf, live: None, user, env_path: String::new() }
    }

    fn page(&self, name: &str, chrome: &Chrome, page: impl serde::Serialize) -> Answer {
        match self.pages.render(name, chrome, page) {
            Ok(html) => Answer::html(StatusCode::OK, html),
            Err(err) => Answer::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")),
        }
    }

    /// `weaver ui`'s environment `env`: the working tree, through the kubeconfig.
    fn local(&self, env: &str) -> EnvSource {
        EnvSource {
            repo: self.options.repo.clone(),
            rev: None,
            connect: self.options.connect.clone(),
            keys: self.options.keys.clone(),
            charts: weaver_source::charts::Archives::Machine,
            prune_releases: weaver_engine::action::PruneReleases::Everywhere,
            limits: Default::default(),
            turns: None,
            path: format!("/environments/{}", pages::segment(env)),
            _lease: None,
        }
    }

    /// The controller's environment `env` of EnvironmentSync `ns/name`: what it last applied,
    /// read as its reconcile reads it (its git cache's mirror at that commit, its cluster as its
    /// account, its keys). With `listing` (the environment's and its releases' pages), only once the API server
    /// says `user` may list Pods in every namespace the environment's releases go to; an
    /// object's page asks of the object itself.
    async fn applied(
        self: &Arc<Self>,
        auth: &Auth,
        user: &weaver_cluster::Subject,
        at: SyncEnvironment<'_>,
        listing: bool,
    ) -> Result<EnvSource> {
        let SyncEnvironment { ns, name, env } = at;
        let sync = self.read_sync(ns, name).await?;
        let applies = applies_environment(&sync, env);
        let Some(shared) = auth.gitops.as_ref().filter(|_| applies) else {
            return Err(Error::new(format!("EnvironmentSync {ns}/{name} applies no environment {env}")).as_not_found());
        };
        let applied = weaver_controllers::gitops::applied::applied(&sync, shared, &self.options.redactor)
            .await
            .map_err(|(reason, why)| {
                Error::new(format!("cannot read what EnvironmentSync {ns}/{name} applied ({reason}): {why}"))
            })?;
        // Nothing applied yet (a first plan awaiting approval): there is no such page yet.
        let Some(applied) = applied else {
            let message = format!("cannot read what EnvironmentSync {ns}/{name} applied: it has applied nothing yet");
            return Err(Error::new(message).as_not_found());
        };
        let (repo, commit) = (applied.repository.clone(), applied.fetched.commit.clone());
        // An OCI artifact's files are read as they are, a git mirror at the commit.
        let rev = applied.fetched.rev().map(str::to_string);
        if listing {
            let (dir, rev, wanted) = (repo.clone(), rev.clone(), env.to_string());
            let bound = applied.limits.max_values_bytes.clone();
            let read = move || {
                weaver_engine::action::open_project(&dir, rev.as_deref())?.bounded(bound.as_ref()).environment(&wanted)
            };
            let environment = tokio::task::spawn_blocking(read)
                .await
                .map_err(|err| Error::new(format!("reading environment {env}: {err}")))??;
            let namespaces: std::collections::BTreeSet<String> =
                environment.releases.iter().map(|r| r.namespace.clone()).collect();
            let namespaces = Vec::from_iter(namespaces);
            may_list_where(auth, user, at, &namespaces).await?;
            let mut known = self.release_namespaces.lock().unwrap_or_else(|e| e.into_inner());
            let read = ReleaseNamespaces { commit: commit.clone(), namespaces };
            known.insert((ns.to_string(), name.to_string(), env.to_string()), read);
        }
        Ok(EnvSource {
            repo,
            rev,
            connect: weaver_cluster::ConnectOptions { given: Some(applied.given), ..self.options.connect.clone() },
            keys: applied.keys,
            charts: applied.charts,
            prune_releases: applied.prune_releases,
            limits: applied.limits,
            turns: Some((shared.clone(), ns.to_string())),
            path: format!("{}/environments/{}", pages::sync_path(ns, name), pages::segment(env)),
            _lease: Some(applied.fetched),
        })
    }

    /// Whether `user` may see environment `env` of EnvironmentSync `ns/name` (see
    /// [`Server::applied`]), asked of the namespaces known for the commit it last applied; only
    /// the first time for a commit is the commit read.
    async fn may_see_applied(
        self: &Arc<Self>,
        auth: &Auth,
        user: &weaver_cluster::Subject,
        at: SyncEnvironment<'_>,
    ) -> Result<()> {
        let SyncEnvironment { ns, name, env } = at;
        let sync = self.read_sync(ns, name).await?;
        let commit = sync.status.as_ref().and_then(|s| s.last_applied_revision.clone());
        let known = {
            let known = self.release_namespaces.lock().unwrap_or_else(|e| e.into_inner());
            let key = (ns.to_string(), name.to_string(), env.to_string());
            known.get(&key).filter(|read| Some(&read.commit) == commit.as_ref()).map(|read| read.namespaces.clone())
        };
        let applies = applies_environment(&sync, env);
        match known {
            Some(namespaces) if applies => may_list_where(auth, user, at, &namespaces).await,
            _ => self.applied(auth, user, at, true).await.map(drop),
        }
    }

    fn target(&self, namespace: &str) -> Target {
        Target { connect: self.options.connect.clone(), namespace: Some(namespace.to_string()) }
    }

    async fn route(self: &Arc<Self>, request: Request<Incoming>, session: &str) -> Answer {
        let Some(path) = segments(request.uri().path()) else {
            return Answer::text(StatusCode::BAD_REQUEST, "the path is not UTF-8\n");
        };
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let query = query(&request);
        let method = request.method().clone();
        let mut user = None;
        if let Some(auth) = &self.auth {
            match (&method, path.as_slice()) {
                (_, ["ui.css"]) => {}
                (&Method::GET, ["sign-in"]) => return self.sign_in_page(session, Vec::new()),
                (&Method::POST, ["sign-in"]) => return self.sign_in(request, session).await,
                (&Method::POST, ["sign-out"]) => return self.sign_out(request, session).await,
                (&Method::GET, ["sign-in", "oidc"]) => return self.sign_in_oidc(&request).await,
                (&Method::GET, ["oidc", "callback"]) => return self.oidc_callback(&request, session, &query).await,
                (_, ["environments", ..]) => {
                    return Answer::text(
                        StatusCode::NOT_FOUND,
                        "the controller shows its EnvironmentSyncs; a repository's environments are `weaver ui`'s, on your machine\n",
                    );
                }
                _ => match auth.user(session).await {
                    Ok(Some(subject)) => user = Some(subject),
                    Ok(None) if method == Method::GET => return Answer::see_other("/sign-in".to_string()),
                    Ok(None) => return Answer::text(StatusCode::UNAUTHORIZED, "sign in first: /sign-in\n"),
                    Err(err) => return self.error_page(session, StatusCode::SERVICE_UNAVAILABLE, &err),
                },
            }
        }
        // Every EnvironmentSync page and action asks first whether the signed-in user may; an
        // action's confirmation page as its POST does.
        if let (Some(auth), Some(subject), ["syncs", ns, name, rest @ ..]) = (&self.auth, &user, path.as_slice()) {
            let asked = match method == Method::GET && !rest.contains(&"confirm") {
                true => Asked::See,
                false => match action_of(rest) {
                    Some(action) => Asked::Act(action),
                    None => return Answer::text(StatusCode::NOT_FOUND, NO_SUCH_ACTION),
                },
            };
            let may = match asked {
                Asked::See => auth.may_read(subject, ns, name).await,
                Asked::Act(action) => auth.may_act(subject, action, ns, name).await,
            };
            match may {
                Ok(true) => {}
                Ok(false) => {
                    let err = may_not(&subject.user, asked, ns, name, rest);
                    return self.error_page(session, StatusCode::FORBIDDEN, &err);
                }
                Err(err) => return self.error_page(session, StatusCode::SERVICE_UNAVAILABLE, &err),
            }
        }
        match (&method, path.as_slice()) {
            (&Method::GET, []) => self.fleet(session, user.as_ref(), &query).await,
            (&Method::GET, ["whoami"]) if self.auth.is_some() => self.who_am_i(session),
            (&Method::GET, ["ui.css"]) => {
                Answer { content_type: "text/css; charset=utf-8", ..Answer::text(StatusCode::OK, pages::STYLESHEET) }
            }
            (&Method::GET, ["ui.js"]) => {
                Answer { content_type: "text/javascript; charset=utf-8", ..Answer::text(StatusCode::OK, pages::SCRIPT) }
            }
            (&Method::GET, ["syncs", ns, name]) => self.sync(session, user.as_ref(), ns, name, query.get("done")).await,
            (&Method::GET, ["syncs", ns, name, "live"]) => match &self.auth {
                Some(auth) => sync_live(&auth.syncs, None, request.headers(), ns, name).await,
                None => {
                    let connect = self.options.connect.clone();
                    let options = WatchOptions::Sync { namespace: ns.to_string(), name: name.to_string(), connect };
                    self.live(request.headers(), options).await
                }
            },
            (&Method::GET, ["syncs", ns, name, "confirm", action]) => {
                self.confirm(session, ns, name, action, query.get("digest")).await
            }
            (&Method::POST, ["syncs", ns, name, action]) => {
                let (ns, name, action) = (ns.to_string(), name.to_string(), action.to_string());
                self.act(request, session, &ns, &name, &action).await
            }
            (&Method::GET, ["environments", env]) => self.environment(session, env, self.local(env), &query).await,
            (&Method::GET, ["environments", env, "live"]) => {
                let (repo, connect) = (self.options.repo.clone(), self.options.connect.clone());
                let options = WatchOptions::Environment { repo, env: env.to_string(), connect };
                self.live(request.headers(), options).await
            }
            (&Method::GET, ["environments", env, "object"]) => {
                self.object(session, None, env, self.local(env), &query).await
            }
            (&Method::GET, ["syncs", ns, name, "environments", env, rest @ ..])
                if matches!(
                    rest,
                    [] | ["live"] | ["object"] | ["releases", _] | ["releases", _, "confirm", "rollback"]
                ) =>
            {
                let (Some(auth), Some(user)) = (&self.auth, &user) else {
                    return Answer::text(StatusCode::NOT_FOUND, "not found: the fleet is at /\n");
                };
                let at = SyncEnvironment { ns, name, env };
                if rest == ["live"] {
                    // From the controller's watches: nothing read, connected or discovered per wait.
                    if let Err(err) = self.may_see_applied(auth, user, at).await {
                        return self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err);
                    }
                    let heard = auth.gitops.as_ref().map(|shared| (&shared.live, *env));
                    return sync_live(&auth.syncs, heard, request.headers(), ns, name).await;
                }
                // A rollback only while the EnvironmentSync is suspended: refused before anything is read.
                if matches!(rest, ["releases", _, "confirm", "rollback"])
                    && let Err(err) = self.suspended_for_rollback(ns, name).await
                {
                    return self.error_page(session, refusal_status(&err, StatusCode::CONFLICT), &err);
                }
                // An object's page asks of the object itself; the others show the namespaces'.
                let listing = rest != ["object"];
                let source = match self.applied(auth, user, at, listing).await {
                    Ok(source) => source,
                    Err(err) => {
                        return self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err);
                    }
                };
                match rest {
                    ["object"] => self.object(session, Some(user), env, source, &query).await,
                    ["releases", release] => {
                        let refused = match self.rollback_refused(auth, user, (ns, name), env, release).await {
                            Ok(refused) => refused,
                            Err(err) => return self.error_page(session, StatusCode::SERVICE_UNAVAILABLE, &err),
                        };
                        let refused = refused.map(|err| self.options.redactor.error(&err));
                        let offer = pages::RollbackOffer::of_sync(ns, name, refused);
                        self.release(session, env, source, release, offer, &query).await
                    }
                    ["releases", release, ..] => {
                        let note = pages::rollback_stays(ns, name);
                        self.confirm_rollback(session, &source, env, release, query.get("revision"), Some(note))
                    }
                    _ => self.environment(session, env, source, &query).await,
                }
            }
            (&Method::POST, ["syncs", ns, name, "environments", env, "releases", release, "rollback"]) => {
                let (Some(auth), Some(user)) = (&self.auth, &user) else {
                    return Answer::text(StatusCode::NOT_FOUND, "not found: the fleet is at /\n");
                };
                let (ns, name, env, release) = (ns.to_string(), name.to_string(), env.to_string(), release.to_string());
                let revision = match self.rollback_form(request, session).await {
                    Ok(revision) => revision,
                    Err(refused) => return refused,
                };
                if let Err(err) = self.suspended_for_rollback(&ns, &name).await {
                    return self.error_page(session, refusal_status(&err, StatusCode::CONFLICT), &err);
                }
                let source = match self
                    .applied(auth, user, SyncEnvironment { ns: &ns, name: &name, env: &env }, true)
                    .await
                {
                    Ok(source) => source,
                    Err(err) => {
                        return self.error_page(session, refusal_status(&err, StatusCode::INTERNAL_SERVER_ERROR), &err);
                    }
                };
                // Recorded as the user's, through the EnvironmentSync whose account applies it.
                let applier = format!(
                    "{} through the UI, as EnvironmentSync {ns}/{name} on {}",
                    user.user,
                    weaver_cluster::this_replica()
                );
                let settings = weaver_engine::action::apply::Settings {
                    applier: Some(applier),
                    plan_check: Some(self.still_suspended(&ns, &name)),
                    record_key: None,
                    ..self.options.rollback.clone()
                };
                self.roll_back(session, &env, &release, revision, source, settings).await
            }
            (&Method::GET, ["environments", env, "releases", release]) => {
                let (source, offer) = (self.local(env), pages::RollbackOffer::LOCAL);
                self.release(session, env, source, release, offer, &query).await
            }
            (&Method::GET, ["environments", env, "releases", release, "confirm", "rollback"]) => {
                self.confirm_rollback(session, &self.local(env), env, release, query.get("revision"), None)
            }
            (&Method::POST, ["environments", env, "releases", release, "rollback"]) => {
                let (env, release) = (env.to_string(), release.to_string());
                match self.rollback_form(request, session).await {
                    Ok(revision) => {
                        let settings = self.options.rollback.clone();
                        self.roll_back(session, &env, &release, revision, self.local(&env), settings).await
                    }
                    Err(refused) => refused,
                }
            }
            (&Method::GET, _) => Answer::text(StatusCode::NOT_FOUND, "not found: the fleet is at /\n"),
            _ => Answer::text(StatusCode::METHOD_NOT_ALLOWED, "only GET, and POST for actions\n"),
        }
    }

    /// Whether the browser says the request comes from this server's own pages. A browser
    /// sends Origin with every POST; `Sec-Fetch-Site`, when sent, must agree.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let value = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        // The controller's own name is whatever its Service or Ingress is reached by.
        let hosts = match &self.auth {
            Some(_) => Vec::from_iter(value(header::HOST).map(str::to_string)),
            None => self.hosts.clone(),
        };
        let origin_ok = value(header::ORIGIN).is_none_or(|origin| {
            hosts.iter().any(|host| origin == format!("http://{host}") || origin == format!("https://{host}"))
        });
        let site_ok = value(header::HeaderName::from_static("sec-fetch-site"))
            .is_none_or(|site| site == "same-origin" || site == "none");
        origin_ok && site_ok
    }

    fn error_page(&self, session: &str, status: StatusCode, err: &Error) -> Answer {
        let chrome = self.chrome(session, vec![self.options.redactor.error(err)], Vec::new());
        let page = self.page("base.html", &chrome, ());
        Answer { status, ..page }
    }

    /// `ran`'s value, its warnings told where the actions taken are (an action's answer is a
    /// redirection, with no page to show them on).
    fn told<T>(&self, ran: Ran<T>) -> T {
        for warning in ran.warnings {
            let warning = self.options.redactor.redact(&warning).into_owned();
            (self.options.on)(Progress::Warning(warning));
        }
        ran.value
    }
}

/// The controller's live updates of an EnvironmentSync's page, or (`heard`: the controller's
/// watches of weaver's objects, and the environment) of an environment it applies, as
/// [`Server::live`] answers them, without a connection, discovery or watch of their own per
/// request: from its watch of EnvironmentSyncs (each reconcile writes the status: an apply's
/// end, drift found) and, for an environment, the changes others make to its objects, which
/// the controller's watches see (drift as it happens).
async fn sync_live(
    syncs: &weaver_cluster::SyncCache,
    heard: Option<(&weaver_cluster::LiveCache, &str)>,
    headers: &HeaderMap,
    ns: &str,
    name: &str,
) -> Answer {
    let marks = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(pages::marks_of);
    let sync_changed = format!("EnvironmentSync {name}");
    // Where the page stands now, for a browser that sent no marks (or none of this page's).
    let fresh = || {
        let told = heard.map(|(live, env)| live.told(env).to_string());
        pages::live_event(&[vec![syncs.mark(ns, name)], Vec::from_iter(told)].concat(), None)
    };
    let body = match (marks.as_deref(), heard) {
        (Some([mark]), None) => match syncs.next_change(ns, name, mark, pages::LIVE_WAIT).await {
            Some(now) => pages::live_event(&[now], Some(&sync_changed)),
            None => pages::live_event(std::slice::from_ref(mark), None),
        },
        (Some([mark, told]), Some((live, env))) => match told.parse::<u64>() {
            Ok(count) => tokio::select! {
                changed = syncs.next_change(ns, name, mark, pages::LIVE_WAIT) => match changed {
                    Some(now) => pages::live_event(&[now, told.clone()], Some(&sync_changed)),
                    None => pages::live_event(&[mark.clone(), told.clone()], None),
                },
                Some((now, changed)) = live.next_told(env, count, pages::LIVE_WAIT) => {
                    let what = format!("{} {}", changed.kind, changed.name);
                    pages::live_event(&[mark.clone(), now.to_string()], Some(&what))
                }
            },
            Err(_) => fresh(),
        },
        _ => fresh(),
    };
    Answer { content_type: "text/event-stream; charset=utf-8", ..Answer::text(StatusCode::OK, body) }
}

/// An environment of an EnvironmentSync, as the UI's paths name it: `env` of `ns/name`.
#[derive(Clone, Copy)]
struct SyncEnvironment<'a> {
    ns: &'a str,
    name: &'a str,
    env: &'a str,
}

/// Whether `user` may see an environment of EnvironmentSync `ns/name` whose releases apply to
/// `namespaces`: list Pods in each of them.
async fn may_list_where(
    auth: &Auth,
    user: &weaver_cluster::Subject,
    at: SyncEnvironment<'_>,
    namespaces: &[String],
) -> Result<()> {
    let SyncEnvironment { ns, name, env } = at;
    for namespace in namespaces {
        if !auth.may_on(user, "list", "", "pods", namespace, "").await? {
            return Err(Error::new(format!(
                "{} may not see environment {env} of EnvironmentSync {ns}/{name}: it may not list pods in namespace {namespace}",
                user.user
            ))
            .with_help(format!("that needs list on pods in namespace {namespace}, where the environment applies"))
            .as_forbidden());
        }
    }
    Ok(())
}

/// The repository's environments (not the abstract ones) whose labels `selector` matches: none
/// matching is an answer, not an error, on a page that filters.
fn environments(repo: &std::path::Path, selector: Option<&str>) -> Result<Vec<weaver_project::Environment>> {
    let selector = weaver_project::Selector::parse_flag(&Vec::from_iter(selector), "the label filter")?;
    let project = weaver_engine::action::open_project(repo, None)?;
    let mut environments = Vec::new();
    for name in project.environment_names()? {
        let env = project.environment(&name)?;
        if !env.is_abstract && selector.matches(&env.labels) {
            environments.push(env);
        }
    }
    Ok(environments)
}

/// The status an error is answered with: 403 when the cluster refused the user's rights, 404
/// when what the page shows or the action acts on does not exist, else `otherwise` (500 for a
/// page whose repository or cluster failed, 409 for an action something else stopped).
fn refusal_status(err: &Error, otherwise: StatusCode) -> StatusCode {
    if err.forbidden {
        StatusCode::FORBIDDEN
    } else if err.not_found {
        StatusCode::NOT_FOUND
    } else {
        otherwise
    }
}

/// The value, or None with its error (redacted, as a report quotes one) kept for the page.
fn keep<T>(result: Result<T>, errors: &mut Vec<String>, redactor: &weaver_secrets::Redactor) -> Option<T> {
    result.map_err(|err| errors.push(redactor.error(&err))).ok()
}

/// What actions returned, and what they warned of as they went.
struct Ran<T> {
    value: T,
    warnings: Vec<String>,
}

impl<T> Ran<Result<T>> {
    /// The value with the warnings, or the error.
    fn result(self) -> Result<(T, Vec<String>)> {
        Ok((self.value?, self.warnings))
    }
}

/// Runs actions on a thread of their own, through the process's runtime as a command runs them
/// (their futures need not be `Send`). Of what they tell as they go, their warnings are kept:
/// a page shows them with the actions' results and errors.
async fn run<F, T>(work: F) -> Result<Ran<T>>
where
    F: AsyncFnOnce(weaver_engine::action::OnProgress<'_>) -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let warnings = std::sync::Mutex::new(Vec::new());
        let heard = |progress: Progress<'_>| {
            if let Progress::Warning(warning) = progress {
                warnings.lock().unwrap_or_else(|e| e.into_inner()).push(warning);
            }
        };
        let value = weaver_engine::action::block_on(work(&heard));
        Ran { value, warnings: warnings.into_inner().unwrap_or_else(|e| e.into_inner()) }
    })
    .await
    .map_err(|err| Error::new(format!("a page's work stopped: {err}")))
}

/// What a user asked of an EnvironmentSync: to see it (a page), which needs `get`, or to take
/// one of its actions (its confirmation page or its POST), which needs the action's own verb.
#[derive(Clone, Copy, PartialEq)]
enum Asked {
    See,
    Act(&'static str),
}

const NO_SUCH_ACTION: &str = "no such action: reconcile, suspend, resume, approve, or a release's rollback\n";

/// The action a path under an EnvironmentSync's takes (`confirm/approve`, `suspend`, a
/// release's `…/rollback`), as the verb it needs; None when it names none.
fn action_of(rest: &[&str]) -> Option<&'static str> {
    let word = match rest {
        [.., "releases", _, "rollback"] | [.., "releases", _, "confirm", "rollback"] => "rollback",
        ["confirm", action] | [action] => action,
        _ => return None,
    };
    auth::ACTIONS.into_iter().find(|action| *action == word && (word == "rollback") == rest.contains(&"releases"))
}

/// That `user` may not do what `asked` of EnvironmentSync `ns/name`, for the page or action at
/// `doing` under its path.
fn may_not(user: &str, asked: Asked, ns: &str, name: &str, doing: &[&str]) -> Error {
    let (verb, needs) = match asked {
        Asked::See => ("see", "get"),
        Asked::Act(action) => (action, action),
    };
    let doing = if doing.is_empty() { String::new() } else { format!(" ({})", doing.join("/")) };
    Error::new(format!("{user} may not {verb} EnvironmentSync {ns}/{name}{doing}"))
        .with_help(format!("that needs the verb {needs} on environmentsyncs.weaver.example.com in namespace {ns}"))
}

/// Why a rollback of an environment EnvironmentSync `ns/name` (`sync`) applies is refused:
/// while it runs, its next reconcile would apply git's commit again over the rollback (Argo CD
/// refuses a rollback under auto-sync alike). Ok: it is suspended, and its controller has seen
/// it so (`status.observedGeneration`): a sync's reconciles run one at a time, so one that
/// started before the suspend, and could still apply, has ended.
fn rollback_refusal(sync: &weaver_controllers::gitops::EnvironmentSync, ns: &str, name: &str) -> Result<()> {
    let observed = sync.status.as_ref().and_then(|s| s.observed_generation);
    match (sync.spec.suspend, observed == sync.metadata.generation) {
        (true, true) => Ok(()),
        (true, false) => Err(Error::new(format!(
            "EnvironmentSync {ns}/{name} is suspended, but its controller has not seen it so yet: a reconcile that \
             started before may still apply the commit git names over a rollback"
        ))
        .with_help("roll back once its page shows it suspended (status.observedGeneration is metadata.generation)")),
        (false, _) => Err(Error::new(format!(
            "EnvironmentSync {ns}/{name} is not suspended: its next reconcile would apply the commit git names \
             again over a rollback"
        ))
        .with_help(format!(
            "suspend EnvironmentSync {ns}/{name} first (its page's Suspend, or `weaver sync suspend {name} -n {ns}`), \
             roll back, and resume it when git should apply again"
        ))),
    }
}

/// Whether the EnvironmentSync's status names environment `env` among those it applies.
fn applies_environment(sync: &weaver_controllers::gitops::EnvironmentSync, env: &str) -> bool {
    sync.status.as_ref().is_some_and(|s| s.environments.iter().any(|e| e.name == env))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_controllers::gitops::{EnvironmentSync, EnvironmentSyncStatus};

    fn sync(suspend: bool, generation: i64, observed: Option<i64>) -> EnvironmentSync {
        let spec = serde_json::json!({"source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}}, "environments": ["dev"],
            "serviceAccountName": "deployer", "suspend": suspend});
        let mut sync = EnvironmentSync::new("shop", serde_json::from_value(spec).unwrap());
        sync.metadata.generation = Some(generation);
        sync.status = Some(EnvironmentSyncStatus { observed_generation: observed, ..Default::default() });
        sync
    }

    #[test]
    fn a_rollback_waits_for_the_controller_to_have_seen_the_suspend() {
        assert!(rollback_refusal(&sync(true, 3, Some(3)), "team", "shop").is_ok());
        // Suspended, but a reconcile of the generation before may still be applying.
        let err = rollback_refusal(&sync(true, 3, Some(2)), "team", "shop").unwrap_err();
        assert!(err.to_string().contains("its controller has not seen it so yet"), "{err}");
        let err = rollback_refusal(&sync(true, 3, None), "team", "shop").unwrap_err();
        assert!(err.to_string().contains("has not seen it so yet"), "{err}");
        let err = rollback_refusal(&sync(false, 3, Some(3)), "team", "shop").unwrap_err();
        assert!(err.to_string().contains("EnvironmentSync team/shop is not suspended"), "{err}");
    }
}
