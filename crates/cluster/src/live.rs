//! Live state from watches, for a process that reads the same objects on every interval (the
//! GitOps controller): where the CLI LISTs, a [`LiveCache`] answers a LIST of weaver's objects
//! from a watch of the same resource and namespace, started by the first such LIST and kept
//! while it is read. One watch per (identity, resource, namespace) selects every object
//! carrying weaver's release label, so every release and selector weaver asks for there is
//! answered from it, filtered here; a LIST whose selector does not imply that label goes to the
//! server.
//!
//! Reads see this process's own writes: each write through a cluster of the cache is pending
//! for its resource until the watch has delivered it, and a read waits for that (briefly: then
//! it LISTs, as the CLI would). Another process's writes are seen as soon as the watch delivers
//! them, which is what [`LiveCache::changes`] tells: objects changed by anyone but weaver's
//! field manager, so that drift is noticed when it happens rather than on the next interval.
//!
//! A watch runs as whom its first reader connected as (the tenant's token): a reader with
//! another token for the same identity (a renewed one) starts another, which takes over once
//! it has listed; until then the old one answers, so a renewal costs no reader a wait. A watch
//! the server refuses (the account may list but not watch) is not used: its readers LIST.
//!
//! Another cluster (an EnvironmentSync's `kubeConfig` Secret) has a cache of its own
//! ([`LiveCache::of_another_cluster`]), one per Secret and content, whose changes are told
//! with this cache's: drift there is noticed when it happens too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Discovered, ManagedFields, ServedKind, with_kind};
use weaver_core::manifest::{LABEL_ENVIRONMENT, LABEL_RELEASE, ListTarget, MANAGER};

/// kube's watcher asks the server to hold each watch open for up to 290 s, and a quiet watch
/// sends nothing meanwhile (bookmarks come about once a minute).
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(295);

/// Settings for a client that watches (the operator): reads may idle as long as a watch lasts, as
/// kube's own default allows; a shorter read timeout would cut every quiet watch and make the
/// controller list everything again.
pub fn for_watching(mut config: kube::Config) -> kube::Config {
    config.read_timeout = config.read_timeout.map(|timeout| timeout.max(WATCH_READ_TIMEOUT));
    config
}

/// How long a read waits for a watch to start (its first LIST) or to deliver this process's
/// writes, before it LISTs instead.
const CATCH_UP: Duration = Duration::from_secs(5);
/// A watch nobody read for this long is stopped.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// How long discovery's answer is used before it is asked again: a CRD one EnvironmentSync
/// installs is served to the others after at most this.
const DISCOVERY_AGE: Duration = Duration::from_secs(60);

/// Watches shared by every cluster connection made with this cache (cheap to clone).
#[derive(Clone)]
pub struct LiveCache {
    inner: Arc<Inner>,
}

/// An identity's clients, built with one token.
#[derive(Clone)]
pub(super) struct Clients {
    /// The digest of the token they were built with.
    token: [u8; 32],
    pub requests: kube::Client,
    pub watches: kube::Client,
}

struct Inner {
    watches: Mutex<HashMap<(String, ListTarget, Watched), Watches>>,
    /// Clients by identity.
    clients: Mutex<HashMap<String, Clients>>,
    /// By server: a kubeconfig's contexts may name several.
    discovered: tokio::sync::Mutex<HashMap<String, (Arc<Discovered>, Instant)>>,
    /// Shared with the caches of other clusters made from this one.
    changes: tokio::sync::broadcast::Sender<Changed>,
    /// By environment, how many changes were told and the last: where a page waits from.
    /// Shared as `changes` is.
    told: Arc<Mutex<HashMap<String, (u64, Changed)>>>,
    /// Writes not yet delivered by their resource's watch, by resource and namespace.
    pending: Mutex<HashMap<ListTarget, Vec<Pending>>>,
    /// Counts writes, so a watch that LISTed again knows which writes its LIST includes.
    writes: std::sync::atomic::AtomicU64,
    /// Where watches run: the caller's runtime when None (the controller's, which lives as
    /// long as the process).
    runtime: Option<tokio::runtime::Handle>,
    /// Which LISTs are answered from watches.
    scope: Scope,
    /// The watches the server refuses (RBAC), by identity and target: why, in a sentence.
    refused: Mutex<HashMap<(String, ListTarget), String>>,
    /// The caches of other clusters, by the kubeconfig's name, with the digest of its text.
    others: Mutex<HashMap<String, ([u8; 32], LiveCache)>>,
}

/// Which LISTs a cache answers from watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Those of weaver's objects (whose selector implies its release label); others go to the
    /// server. The controller's: it reads them every interval, and a tenant's other objects
    /// are none of its business.
    Weavers,
    /// Any LIST: one with another selector from a watch with that selector, weaver's objects
    /// still from a watch of theirs. `weaver ui`'s, whose pages read the objects' dependents
    /// and events as well.
    All,
}

/// What one watch of a resource and namespace holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Watched {
    /// weaver's objects: those with its release label.
    Weavers,
    /// Those a label selector that does not imply weaver's label selects (every object for
    /// none): the LIST it answers, made continuous (Helm's records by `owner=helm`, a chart's
    /// `lookup`, the objects' dependents and events). [`Scope::All`] only.
    Selected(String),
}

/// A write a watch has yet to deliver.
struct Pending {
    name: String,
    /// The object's resourceVersion after the write (0 for a deletion: any event of it will do).
    version: u64,
    /// Its labels after the write: a watch whose selector does not select them holds the
    /// write once it does not hold the object.
    labels: Value,
    /// `Inner::writes` when it was made.
    sequence: u64,
}

/// An object of weaver's changed by someone else than weaver's field manager, or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub environment: Option<String>,
    pub release: Option<String>,
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
}

/// The watch of one (identity, target), and the one started with a renewed token to replace it.
struct Watches {
    current: Arc<Watch>,
    next: Option<Arc<Watch>>,
}

/// One watch, and the objects it has delivered.
struct Watch {
    objects: RwLock<HashMap<String, Arc<Value>>>,
    /// What it selects: weaver's release label, or the selector of the LISTs it answers.
    selector: Selector,
    state: tokio::sync::watch::Sender<State>,
    read_at: Mutex<Instant>,
    started: Instant,
    /// The digest of the token the watch runs with.
    token: [u8; 32],
    /// Set once the task is started, after the watch is made: a task started while it is
    /// being made (`Arc::new_cyclic`) could run on another thread before it can be reached,
    /// and end.
    task: std::sync::OnceLock<tokio::task::AbortHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    /// Everything listed: `.0` is `Inner::writes` when the LIST began.
    Synced(u64),
    /// The server refused the watch (forbidden, unauthorized): readers LIST.
    Refused,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

impl Default for LiveCache {
    fn default() -> Self {
        LiveCache::running_on(None, Scope::Weavers)
    }
}

impl std::fmt::Debug for LiveCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watches = self.inner.watches.lock().unwrap_or_else(|e| e.into_inner()).len();
        f.debug_struct("LiveCache").field("watches", &watches).finish()
    }
}

impl LiveCache {
    /// A cache of weaver's objects whose watches and clients live on the runtime this is called
    /// on (the controller's), whichever runtime reads through it later: a page view's, which
    /// ends with the view, would take a watch or a client's connections with it.
    pub fn on_current_runtime() -> LiveCache {
        LiveCache::running_on(Some(tokio::runtime::Handle::current()), Scope::Weavers)
    }

    /// A cache of the LISTs `scope` says, whose watches run on `runtime` (None: on the runtime
    /// of the read that starts each), for readers whose runtimes end before the watches should.
    pub(super) fn running_on(runtime: Option<tokio::runtime::Handle>, scope: Scope) -> LiveCache {
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        LiveCache::telling(runtime, scope, changes, Arc::default())
    }

    fn telling(
        runtime: Option<tokio::runtime::Handle>,
        scope: Scope,
        changes: tokio::sync::broadcast::Sender<Changed>,
        told: Arc<Mutex<HashMap<String, (u64, Changed)>>>,
    ) -> LiveCache {
        LiveCache {
            inner: Arc::new(Inner {
                watches: Mutex::default(),
                clients: Mutex::default(),
                discovered: tokio::sync::Mutex::default(),
                changes,
                told,
                pending: Mutex::default(),
                writes: std::sync::atomic::AtomicU64::new(0),
                runtime,
                scope,
                refused: Mutex::default(),
                others: Mutex::default(),
            }),
        }
    }

    /// The cache of the cluster `kubeconfig` reaches (`name`d `app/prod-cluster`, the Secret it
    /// is read from), whose changes are told with this cache's: the one made before while the
    /// kubeconfig is the same text, else a new one, which stops the old one's watches once the
    /// clusters connected with it are gone (a changed Secret may reach another cluster, or
    /// another account).
    pub fn of_another_cluster(&self, name: &str, kubeconfig: &str) -> LiveCache {
        let digest: [u8; 32] = Sha256::digest(kubeconfig.as_bytes()).into();
        let mut others = self.inner.others.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kept, cache)) = others.get(name)
            && *kept == digest
        {
            return cache.clone();
        }
        let (changes, told) = (self.inner.changes.clone(), Arc::clone(&self.inner.told));
        let cache = LiveCache::telling(self.inner.runtime.clone(), self.inner.scope, changes, told);
        others.insert(name.to_string(), (digest, cache.clone()));
        cache
    }

    /// The cache of another cluster made by [`LiveCache::of_another_cluster`] for `name`.
    pub fn another_cluster(&self, name: &str) -> Option<LiveCache> {
        let others = self.inner.others.lock().unwrap_or_else(|e| e.into_inner());
        others.get(name).map(|(_, cache)| cache.clone())
    }

    /// Keeps the caches of other clusters whose name is still `used`: the others' watches stop.
    pub fn retain_other_clusters(&self, used: impl Fn(&str) -> bool) {
        self.inner.others.lock().unwrap_or_else(|e| e.into_inner()).retain(|name, _| used(name));
    }

    /// What the server refuses `identity` to watch (`ServiceAccount team/deployer`; None: any
    /// identity of this cache), a sentence each saying what to grant, in a stable order.
    pub fn refused_watches(&self, identity: Option<&str>) -> Vec<String> {
        let refused = self.inner.refused.lock().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<String> = refused
            .iter()
            .filter(|((who, _), _)| identity.is_none_or(|identity| who == identity))
            .map(|(_, message)| message.clone())
            .collect();
        found.sort();
        found
    }

    /// Objects of weaver's changed by another field manager, or deleted, as the watches see them.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Changed> {
        self.inner.changes.subscribe()
    }

    /// How many changes of `environment`'s objects were told so far: where a page that waits
    /// for the next one starts (see [`LiveCache::next_told`]).
    pub fn told(&self, environment: &str) -> u64 {
        self.last_told(environment).map_or(0, |(count, _)| count)
    }

    fn last_told(&self, environment: &str) -> Option<(u64, Changed)> {
        self.inner.told.lock().unwrap_or_else(|e| e.into_inner()).get(environment).cloned()
    }

    /// Waits, at most `within`, until a change of `environment`'s objects is told after `mark`
    /// (a count [`LiveCache::told`] gave): the count then and the last change; None when none
    /// came. From the watches already running: no request to the API server.
    pub async fn next_told(&self, environment: &str, mark: u64, within: Duration) -> Option<(u64, Changed)> {
        // Subscribed before the count is read, so a change told after the read wakes the wait.
        let mut changes = self.changes();
        let waiting = async {
            loop {
                if let Some(told) = self.last_told(environment).filter(|(count, _)| *count != mark) {
                    return told;
                }
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await {
                    // Not reached: the cache holds the sender while it lives.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(within, waiting).await.ok()
    }

    /// How many watches run.
    pub fn watches(&self) -> usize {
        self.inner.watches.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The clients of `identity` for `config`, for requests and for watches: those built before
    /// while its token is the same, so that requests share connections, and watches theirs.
    /// The watches' reads may idle as long as a watch lasts ([`for_watching`]): with
    /// the request timeout as their read timeout, a quiet watch would be cut and started again
    /// every request timeout.
    pub(super) fn clients(
        &self,
        identity: &str,
        config: kube::Config,
        rate: Option<&super::RequestRate>,
    ) -> Result<Clients, kube::Error> {
        let token = token_digest(&config);
        let mut clients = self.inner.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = clients.get(identity)
            && kept.token == token
        {
            return Ok(kept.clone());
        }
        let build = |config: kube::Config| match &self.inner.runtime {
            Some(runtime) => {
                // kube's client starts a task in front of its service: on the cache's runtime,
                // and so is each request (its connection), as for `SharedServers`.
                let _on_cache = runtime.enter();
                let builder = kube::client::ClientBuilder::try_from(config)?;
                let on_cache = super::on_runtime::OnRuntime { runtime: runtime.clone() };
                Ok(match rate {
                    Some(rate) => builder.with_layer(rate).with_layer(&on_cache).build(),
                    None => builder.with_layer(&on_cache).build(),
                })
            }
            None => match rate {
                Some(rate) => rate.client(config),
                None => kube::Client::try_from(config),
            },
        };
        let built = Clients { token, watches: build(for_watching(config.clone()))?, requests: build(config)? };
        clients.insert(identity.to_string(), built.clone());
        Ok(built)
    }

    /// What discovery found at `server`, asked again when older than [`DISCOVERY_AGE`].
    pub(super) async fn discovered<F>(&self, server: &str, discover: F) -> weaver_core::error::Result<Arc<Discovered>>
    where
        F: std::future::Future<Output = weaver_core::error::Result<Arc<Discovered>>>,
    {
        let mut discovered = self.inner.discovered.lock().await;
        if let Some((found, at)) = discovered.get(server)
            && at.elapsed() < DISCOVERY_AGE
        {
            return Ok(found.clone());
        }
        let found = discover.await?;
        discovered.insert(server.to_string(), (found.clone(), Instant::now()));
        Ok(found)
    }

    /// The objects of `target` that `selector` selects, from the watch of `target` as
    /// `identity` (started now if none runs), with `managed_fields` as asked; None when the
    /// caller must LIST: the selector does not imply weaver's release label, or the watch
    /// cannot answer yet.
    pub(super) async fn list(
        &self,
        client: &kube::Client,
        identity: &str,
        served: &ServedKind,
        target: &ListTarget,
        selector: &str,
        managed_fields: ManagedFields,
    ) -> Option<Vec<Arc<Value>>> {
        let selects = Selector::parse(selector)?;
        let watched = match (selects.implies_release_label(), self.inner.scope) {
            (true, _) => Watched::Weavers,
            (false, Scope::All) => Watched::Selected(selector.to_string()),
            (false, Scope::Weavers) => return None,
        };
        let weavers = watched == Watched::Weavers;
        let watch = self.watch(client, identity, served, target, watched);
        let mut state = watch.state.subscribe();
        // Only the first readers of a watch wait for it to start: one that has not started in
        // that time is LISTed around until it has.
        let wait = CATCH_UP.saturating_sub(watch.started.elapsed());
        let synced = tokio::time::timeout(wait, state.wait_for(|s| *s != State::Starting)).await;
        if !matches!(synced.ok()?.ok().map(|s| *s), Some(State::Synced(_))) {
            return None;
        }
        // The writes pending are the watch of weaver's objects' to clear: another watch of the
        // target (another selector) only waits for them.
        if !self.caught_up(target, &watch, weavers).await {
            // The LIST the caller makes instead is as new as any write: what is pending is moot.
            if weavers {
                self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(target);
            }
            return None;
        }
        *watch.read_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let objects = watch.objects.read().unwrap_or_else(|e| e.into_inner());
        // Shared, not copied: a reader that only reads (the objects' dependents, the events)
        // copies nothing.
        let selected = objects.values().filter(|object| selects.matches(object)).map(|object| match managed_fields {
            ManagedFields::Text => Arc::clone(object),
            ManagedFields::Parsed => Arc::new(fields_parsed(object)),
        });
        Some(selected.collect())
    }

    /// Notes a write of `name` in `target`, which answered `answer` (the object after it; None
    /// for a deletion): reads of `target` wait until its watch has delivered it.
    pub(super) fn wrote(&self, target: ListTarget, name: &str, answer: Option<&Value>) {
        let version = match answer {
            None => 0,
            // Not a number: nothing to wait for that could be told apart. The next read LISTs.
            Some(object) => resource_version(object).unwrap_or(u64::MAX),
        };
        let labels = answer.and_then(|object| object.pointer("/metadata/labels")).cloned().unwrap_or(Value::Null);
        let sequence = self.inner.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.entry(target).or_default().push(Pending { name: name.to_string(), version, labels, sequence });
    }

    /// Waits until `watch` holds every write to `target` this process made, up to
    /// [`CATCH_UP`]; whether it got there. A write that changed nothing (an apply of what is
    /// there) sends no event: it is held once the object's resourceVersion is as new. With
    /// `clears`, the writes it holds are no longer pending.
    async fn caught_up(&self, target: &ListTarget, watch: &Watch, clears: bool) -> bool {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let waiting = {
                let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
                let objects = watch.objects.read().unwrap_or_else(|e| e.into_inner());
                // A write the watch selects is held once it has the object as new; a deletion,
                // or a write it does not select (the object left its selection, or never was
                // in it), once it does not have the object.
                let held = |p: &Pending| {
                    let selected =
                        p.version > 0 && watch.selector.selects(|key| p.labels.get(key).and_then(Value::as_str));
                    match (objects.get(&p.name), selected) {
                        (None, false) => true,
                        (Some(object), true) => resource_version(object).is_some_and(|v| v >= p.version),
                        _ => false,
                    }
                };
                let writes = pending.entry(target.clone()).or_default();
                if clears {
                    writes.retain(|p| !held(p));
                }
                let mut stuck = writes.iter().filter(|p| !held(p)).peekable();
                let waiting = stuck.peek().is_some();
                if waiting && Instant::now() >= deadline {
                    let stuck: Vec<String> = stuck
                        .map(|p| {
                            let seen = objects.get(&p.name).and_then(|o| resource_version(o));
                            format!("{} (wrote {}, watch has {seen:?})", p.name, p.version)
                        })
                        .collect();
                    tracing::debug!(resource = %target.kind, namespace = ?target.namespace, ?stuck, "writes not delivered by the watch in time: listing");
                    return false;
                }
                waiting
            };
            if !waiting {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The watch of `target` as `identity`, started when none runs. One that runs with another
    /// token than `client`'s answers until the watch started with this one has listed.
    fn watch(
        &self,
        client: &kube::Client,
        identity: &str,
        served: &ServedKind,
        target: &ListTarget,
        watched: Watched,
    ) -> Arc<Watch> {
        let token = {
            let clients = self.inner.clients.lock().unwrap_or_else(|e| e.into_inner());
            clients.get(identity).map(|kept| kept.token).unwrap_or_default()
        };
        let mut watches = self.inner.watches.lock().unwrap_or_else(|e| e.into_inner());
        watches.retain(|_, watches| watches.current.read_at.lock().unwrap_or_else(|e| e.into_inner()).elapsed() < IDLE);
        let key = (identity.to_string(), target.clone(), watched.clone());
        let Some(entry) = watches.get_mut(&key) else {
            let watch = self.start(client, identity, served, target, token, watched);
            watches.insert(key, Watches { current: watch.clone(), next: None });
            return watch;
        };
        if entry.current.token == token {
            return entry.current.clone();
        }
        let next = match entry.next.take().filter(|next| next.token == token) {
            Some(next) => next,
            None => self.start(client, identity, served, target, token, watched),
        };
        let listed = matches!(*next.state.borrow(), State::Synced(_));
        // An old token the server now refuses (expired) has nothing to answer with.
        let refused = *entry.current.state.borrow() == State::Refused;
        if listed || refused {
            entry.current = next.clone();
            return next;
        }
        *entry.current.read_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        entry.next = Some(next);
        entry.current.clone()
    }

    /// A watch of `target` through `client`, whose token has digest `token`.
    fn start(
        &self,
        client: &kube::Client,
        identity: &str,
        served: &ServedKind,
        target: &ListTarget,
        token: [u8; 32],
        watched: Watched,
    ) -> Arc<Watch> {
        let api: Api<DynamicObject> = match target.namespace.as_deref().filter(|_| served.namespaced) {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &served.resource),
            None => Api::all_with(client.clone(), &served.resource),
        };
        let (state, _) = tokio::sync::watch::channel(State::Starting);
        let now = Instant::now();
        let selector = match &watched {
            Watched::Weavers => Selector(vec![Requirement::Exists(LABEL_RELEASE.to_string())]),
            // Parsed before the watch was asked for.
            Watched::Selected(selector) => Selector::parse(selector).unwrap_or(Selector(Vec::new())),
        };
        let watch = Arc::new(Watch {
            objects: RwLock::default(),
            selector,
            state,
            read_at: Mutex::new(now),
            started: now,
            token,
            task: std::sync::OnceLock::new(),
        });
        let (resource, target) = (served.resource.clone(), target.clone());
        let watching = (identity.to_string(), target);
        let fed = run(Arc::downgrade(&watch), Arc::downgrade(&self.inner), api, resource, watching, watched);
        let task = match &self.inner.runtime {
            Some(runtime) => runtime.spawn(fed),
            None => tokio::spawn(fed),
        };
        let _ = watch.task.set(task.abort_handle());
        watch
    }
}

/// Feeds `watch` from the server until it is dropped.
async fn run(
    watch: std::sync::Weak<Watch>,
    cache: std::sync::Weak<Inner>,
    api: Api<DynamicObject>,
    resource: ApiResource,
    (identity, target): (String, ListTarget),
    watched: Watched,
) {
    let config = match &watched {
        Watched::Weavers => watcher::Config::default().labels(LABEL_RELEASE),
        Watched::Selected(selector) if selector.is_empty() => watcher::Config::default(),
        Watched::Selected(selector) => watcher::Config::default().labels(selector),
    };
    // weaver's writes, and others' changes to its objects, are told by the watch of its objects.
    let weavers = watched == Watched::Weavers;
    let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut listing: Option<(HashMap<String, Arc<Value>>, u64)> = None;
    let mut listed_at = 0;
    let refusal_key = (identity.clone(), target.clone());
    // What the server refused, until it is known to be granted: the LIST (true), or only the
    // watch that follows it (false), which kube's watcher retries, with backoff, without listing.
    let mut refused_now: Option<bool> = None;
    loop {
        let next = match refused_now {
            // A watch that starts says nothing: one that runs past the longest backoff without
            // another refusal is granted.
            Some(false) => match tokio::time::timeout(WATCH_HELD, events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let (Some(watch), Some(cache)) = (watch.upgrade(), cache.upgrade()) else { return };
                    granted(&cache, &refusal_key, &resource);
                    watch.state.send_replace(State::Synced(listed_at));
                    refused_now = None;
                    continue;
                }
            },
            _ => events.next().await,
        };
        let Some(event) = next else { return };
        let (Some(watch), Some(cache)) = (watch.upgrade(), cache.upgrade()) else { return };
        // Objects delivered: the watch runs (or, for a refused LIST, the LIST did).
        let delivering = matches!(event, Ok(Event::Apply(_) | Event::Delete(_)));
        if (delivering || (refused_now == Some(true) && matches!(event, Ok(Event::InitDone)))) && refused_now.is_some()
        {
            granted(&cache, &refusal_key, &resource);
            refused_now = None;
        }
        match event {
            Ok(Event::Init) => listing = Some((HashMap::new(), cache.writes.load(std::sync::atomic::Ordering::SeqCst))),
            Ok(Event::InitApply(object)) => {
                if let (Some((objects, _)), Some(value)) = (listing.as_mut(), as_value(object, &resource)) {
                    objects.insert(name_of(&value), Arc::new(value));
                }
            }
            Ok(Event::InitDone) => {
                if let Some((objects, began)) = listing.take() {
                    *watch.objects.write().unwrap_or_else(|e| e.into_inner()) = objects;
                    // Writes made before the LIST began are in it.
                    if weavers
                        && let Some(pending) = cache.pending.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&target)
                    {
                        pending.retain(|p| p.sequence > began);
                    }
                    watch.state.send_replace(State::Synced(began));
                    listed_at = began;
                }
            }
            Ok(Event::Apply(object)) => {
                let Some(value) = as_value(object, &resource) else { continue };
                let (name, version) = (name_of(&value), resource_version(&value).unwrap_or(0));
                let value = Arc::new(value);
                let held =
                    watch.objects.write().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), Arc::clone(&value));
                if weavers {
                    delivered(&cache, &target, &name, Some(version));
                    if changed_by_another(held.as_deref(), &value) {
                        tell(&cache, changed(&value, &target));
                    }
                }
            }
            Ok(Event::Delete(object)) => {
                let Some(value) = as_value(object, &resource) else { continue };
                let name = name_of(&value);
                watch.objects.write().unwrap_or_else(|e| e.into_inner()).remove(&name);
                if weavers {
                    delivered(&cache, &target, &name, None);
                    tell(&cache, changed(&value, &target));
                }
            }
            Err(err) => {
                tracing::debug!(resource = %resource.plural, namespace = ?target.namespace, "watch: {err}");
                let Some(why) = refused(&err) else { continue };
                watch.state.send_replace(State::Refused);
                refused_now = Some(matches!(err, watcher::Error::InitialListFailed(_)));
                let mut refusals = cache.refused.lock().unwrap_or_else(|e| e.into_inner());
                // Told once, not at every retry of the watch.
                if !refusals.contains_key(&refusal_key) {
                    let place = target.namespace.as_ref().map_or_else(String::new, |ns| format!(" in namespace {ns}"));
                    let message = format!(
                        "{identity} may not watch {}{place} ({why}): changes others make to them are found at each \
                         interval instead of as they happen; grant it list and watch on {}",
                        resource.plural, resource.plural
                    );
                    tracing::warn!("{message}");
                    refusals.insert(refusal_key.clone(), message);
                }
            }
        }
    }
}

/// How long a watch refused after its LIST must run without another refusal to count as
/// granted: longer than kube's watcher waits between two tries at most (30 s).
const WATCH_HELD: Duration = Duration::from_secs(40);

/// The refusal of `key` (identity, target) is over: told, and no longer a condition.
fn granted(cache: &Inner, key: &(String, ListTarget), resource: &ApiResource) {
    if cache.refused.lock().unwrap_or_else(|e| e.into_inner()).remove(key).is_some() {
        tracing::info!(resource = %resource.plural, namespace = ?key.1.namespace, "{} may watch them now", key.0);
    }
}

/// Tells `changed` to the changes' receivers, counted for its environment's pages.
fn tell(cache: &Inner, changed: Changed) {
    if let Some(environment) = &changed.environment {
        let mut told = cache.told.lock().unwrap_or_else(|e| e.into_inner());
        let count = told.get(environment).map_or(0, |(count, _)| *count);
        told.insert(environment.clone(), (count + 1, changed.clone()));
    }
    let _ = cache.changes.send(changed);
}

/// Clears the writes of `name` the event (of `version`; None: a deletion) delivers.
fn delivered(cache: &Inner, target: &ListTarget, name: &str, version: Option<u64>) {
    let mut pending = cache.pending.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(writes) = pending.get_mut(target) {
        writes.retain(|p| p.name != name || version.is_some_and(|v| v < p.version));
    }
}

/// Why the server refused the watch (forbidden, unauthorized), if it did: its message.
fn refused(err: &watcher::Error) -> Option<String> {
    let status = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status,
        watcher::Error::WatchError(status) => status,
        _ => return None,
    };
    matches!(status.code, 401 | 403).then(|| format!("{} {}: {}", status.code, status.reason, status.message))
}

/// An object as a LIST with [`ManagedFields::Text`] gives it.
fn as_value(object: DynamicObject, resource: &ApiResource) -> Option<Value> {
    let mut value = serde_json::to_value(object).ok()?;
    if let Some(fields) = value.pointer_mut("/metadata/managedFields") {
        *fields = Value::String(fields.to_string());
    }
    Some(with_kind(value, resource))
}

/// `object` with its managedFields parsed back, as a LIST with [`ManagedFields::Parsed`].
pub fn fields_parsed(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object.pointer_mut("/metadata/managedFields")
        && let Some(parsed) = fields.as_str().and_then(|text| serde_json::from_str(text).ok())
    {
        *fields = parsed;
    }
    object
}

fn name_of(object: &Value) -> String {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn resource_version(object: &Value) -> Option<u64> {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str)?.parse().ok()
}

/// Whether the newest managedFields entries name another manager than weaver's: a change made
/// by hand, by another tool, or by a controller. Entries carry times to the second: an entry
/// of another manager in weaver's second counts as a change. A write through the `scale`
/// subresource (`kubectl scale`, an autoscaler) leaves its entry without a time, so a spec
/// changed since the object `held` before (its generation rose) that weaver's entry does not
/// account for (its time unchanged, or not among the newest) is another's change too; a
/// controller's status written in weaver's second does not hide it.
fn changed_by_another(held: Option<&Value>, object: &Value) -> bool {
    let fields = managed_fields(object);
    let time = |entry: &Value| entry.get("time").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(newest) = fields.iter().map(time).max() else { return false };
    let manager = |entry: &Value| entry.get("manager").and_then(Value::as_str) == Some(MANAGER);
    let newest_entries = || fields.iter().filter(|entry| time(entry) == newest);
    let another = newest_entries()
        .any(|entry| !manager(entry) && entry.get("subresource").and_then(Value::as_str) != Some("status"));
    let generation = |object: &Value| object.pointer("/metadata/generation").and_then(Value::as_i64);
    let ours = |fields: &[Value]| fields.iter().filter(|entry| manager(entry)).map(time).max();
    let spec_changed = held.filter(|held| generation(object) > generation(held));
    let unaccounted =
        spec_changed.is_some_and(|held| ours(&managed_fields(held)) == ours(&fields) || !newest_entries().any(manager));
    another || unaccounted
}

/// The managedFields entries of an object as the cache holds it (their JSON text).
fn managed_fields(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

fn changed(object: &Value, target: &ListTarget) -> Changed {
    let label = |key: &str| weaver_core::manifest::label(object, key).map(str::to_string);
    Changed {
        environment: label(LABEL_ENVIRONMENT),
        release: label(LABEL_RELEASE),
        namespace: target.namespace.clone(),
        kind: target.kind.clone(),
        name: name_of(object),
    }
}

fn token_digest(config: &kube::Config) -> [u8; 32] {
    use secrecy::ExposeSecret;
    let token = config.auth_info.token.as_ref().map(|t| t.expose_secret().to_string()).unwrap_or_default();
    Sha256::digest(token.as_bytes()).into()
}

/// A label selector in Kubernetes' text form (`a`, `!a`, `a=b`, `a==b`, `a!=b`, `a in (b,c)`,
/// `a notin (b,c)`, joined by commas).
#[derive(Debug, PartialEq)]
struct Selector(Vec<Requirement>);

#[derive(Debug, PartialEq)]
enum Requirement {
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Selector {
    fn parse(text: &str) -> Option<Selector> {
        let mut requirements = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            // A term ends at the first comma outside parentheses.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    c == ',' && depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            requirements.push(Requirement::parse(rest[..end].trim())?);
            rest = rest[end..].trim_start_matches(',').trim();
        }
        Some(Selector(requirements))
    }

    /// Whether only objects carrying weaver's release label can match (what the watches hold).
    fn implies_release_label(&self) -> bool {
        self.0.iter().any(|r| matches!(r, Requirement::Exists(k) | Requirement::In(k, _) if k == LABEL_RELEASE))
    }

    fn matches(&self, object: &Arc<Value>) -> bool {
        self.selects(|key| weaver_core::manifest::label(object, key))
    }

    /// Whether an object whose labels `label` reads is selected.
    fn selects<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::Absent(key) => label(key).is_none(),
            Requirement::In(key, values) => label(key).is_some_and(|v| values.iter().any(|w| w == v)),
            Requirement::NotIn(key, values) => label(key).is_none_or(|v| values.iter().all(|w| w != v)),
        })
    }
}

impl Requirement {
    fn parse(term: &str) -> Option<Requirement> {
        let key = |k: &str| Some(k.trim().to_string()).filter(|k| !k.is_empty() && !k.contains(char::is_whitespace));
        let set = |values: &str| -> Option<Vec<String>> {
            let inner = values.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        if let Some(absent) = term.strip_prefix('!') {
            return Some(Requirement::Absent(key(absent)?));
        }
        if let Some((k, v)) = term.split_once("!=") {
            return Some(Requirement::NotIn(key(k)?, vec![v.trim().to_string()]));
        }
        if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return Some(Requirement::In(key(k)?, vec![v.trim().to_string()]));
        }
        if let Some((k, values)) = term.split_once(" notin ") {
            return Some(Requirement::NotIn(key(k)?, set(values)?));
        }
        if let Some((k, values)) = term.split_once(" in ") {
            return Some(Requirement::In(key(k)?, set(values)?));
        }
        Some(Requirement::Exists(key(term)?))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Cluster, ClusterInfo, ConnectOptions, GivenCluster, ManagedFields};

    fn labelled(labels: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": "x", "labels": labels}}))
    }

    #[test]
    fn selectors_weaver_writes_are_read_and_matched() {
        let release = format!("{LABEL_RELEASE} in (web, db)");
        let selector = Selector::parse(&release).unwrap();
        assert!(selector.implies_release_label());
        assert!(selector.matches(&labelled(json!({LABEL_RELEASE: "db"}))));
        assert!(!selector.matches(&labelled(json!({LABEL_RELEASE: "api"}))));
        assert!(!selector.matches(&labelled(json!({}))));

        let foreign = Selector::parse(&format!("{LABEL_RELEASE},!weaver.example.com/status")).unwrap();
        assert!(foreign.implies_release_label());
        assert!(foreign.matches(&labelled(json!({LABEL_RELEASE: "db"}))));
        assert!(!foreign.matches(&labelled(json!({LABEL_RELEASE: "db", "weaver.example.com/status": "deployed"}))));

        let other = Selector::parse("app=web,tier notin (cache),env!=prod").unwrap();
        assert!(!other.implies_release_label(), "a selector without weaver's label goes to the server");
        assert!(other.matches(&labelled(json!({"app": "web", "env": "dev"}))));
        assert!(!other.matches(&labelled(json!({"app": "web", "tier": "cache"}))));
        assert!(!other.matches(&labelled(json!({"app": "web", "env": "prod"}))));
        assert_eq!(Selector::parse("a in (b"), None);
        assert_eq!(Selector::parse(""), Some(Selector(Vec::new())));
    }

    #[tokio::test]
    async fn a_page_hears_the_changes_told_of_its_environment_after_its_mark_and_only_those() {
        let cache = LiveCache::default();
        let of = |environment: &str, name: &str| Changed {
            environment: Some(environment.to_string()),
            release: Some("app".to_string()),
            namespace: Some("ns".to_string()),
            kind: "ConfigMap".to_string(),
            name: name.to_string(),
        };
        tell(&cache.inner, of("dev", "before"));
        let mark = cache.told("dev");
        assert_eq!(mark, 1);
        let short = Duration::from_millis(50);
        assert_eq!(cache.next_told("dev", mark, short).await, None, "nothing after the mark");
        // Another environment's change wakes no page of this one; a change of its own does.
        let teller = cache.clone();
        let telling = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tell(&teller.inner, of("prod", "elsewhere"));
            tell(&teller.inner, of("dev", "edited"));
        });
        let heard = cache.next_told("dev", mark, Duration::from_secs(5)).await;
        telling.await.unwrap();
        assert_eq!(heard, Some((2, of("dev", "edited"))));
        // A mark from before a change hears it at once: nothing between two waits is missed.
        assert_eq!(cache.next_told("dev", mark, short).await, Some((2, of("dev", "edited"))));
        assert_eq!(cache.told("prod"), 1);
    }

    /// Another cluster's cache is kept while its kubeconfig is the same, tells its changes with
    /// this one's, and stops its watches once its kubeconfig changed or nothing uses it.
    #[tokio::test]
    async fn another_clusters_cache_lives_as_long_as_its_kubeconfig_and_tells_its_changes_here() {
        let cache = LiveCache::default();
        let remote = cache.of_another_cluster("app/prod", "kubeconfig one");
        assert!(Arc::ptr_eq(&remote.inner, &cache.of_another_cluster("app/prod", "kubeconfig one").inner));
        assert!(!Arc::ptr_eq(&remote.inner, &cache.inner));
        let mut changes = cache.changes();
        let edited = Changed {
            environment: Some("prod".to_string()),
            release: Some("app".to_string()),
            namespace: Some("ns".to_string()),
            kind: "ConfigMap".to_string(),
            name: "app".to_string(),
        };
        tell(&remote.inner, edited.clone());
        assert_eq!(changes.try_recv().ok(), Some(edited), "told with this cache's changes");
        assert_eq!(cache.told("prod"), 1);

        let served =
            ServedKind { resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()), namespaced: true };
        let target = ListTarget { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: Some("ns".into()) };
        let identity = "ServiceAccount ns/deployer";
        let watch =
            Arc::downgrade(&remote.watch(&client_with(&remote, "t"), identity, &served, &target, Watched::Weavers));
        assert_eq!((remote.watches(), cache.watches()), (1, 0), "the watch is the other cluster's");
        // The Secret changed: another cache; the old one's watch stops with its last user.
        let changed = cache.of_another_cluster("app/prod", "kubeconfig two");
        assert!(!Arc::ptr_eq(&remote.inner, &changed.inner));
        drop(remote);
        assert!(watch.upgrade().is_none(), "the old kubeconfig's watch still runs");
        cache.retain_other_clusters(|name| name != "app/prod");
        assert!(cache.another_cluster("app/prod").is_none());
    }

    /// A client with `token` for a server that never answers: its watches never list.
    fn client_with(cache: &LiveCache, token: &str) -> kube::Client {
        let mut config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        config.auth_info.token = Some(token.to_string().into());
        cache.clients("ServiceAccount ns/deployer", config, None).unwrap().watches
    }

    /// A watch (and its client) first asked for on a runtime that ends (a page view's) runs on
    /// the cache's runtime, and outlives it.
    #[test]
    fn a_watch_started_from_a_runtime_that_ends_runs_on_the_caches() {
        let caches = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let cache = caches.block_on(async { LiveCache::on_current_runtime() });
        let served =
            ServedKind { resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()), namespaced: true };
        let target = ListTarget { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: Some("ns".into()) };
        // A view's runtime, as a command's: one thread, ended when the view is done.
        let view = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let watch = view.block_on(async {
            let client = client_with(&cache, "token");
            cache.watch(&client, "ServiceAccount ns/deployer", &served, &target, Watched::Weavers)
        });
        drop(view);
        // The view's runtime is gone: the watch's task is not.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!watch.task.get().unwrap().is_finished(), "the watch ended with the runtime that started it");
    }

    /// A cluster connected against `server` with `cache`, its request timeout `timeout`, as
    /// the controller connects its EnvironmentSyncs'.
    async fn connected(server: &weaver_test_apiserver::TestApiServer, cache: LiveCache, timeout: Duration) -> Cluster {
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        let info = ClusterInfo {
            context: "controller".into(),
            server: server.url(),
            request_timeout: timeout,
            retry_budget: timeout,
        };
        let options = ConnectOptions {
            kubeconfig: None,
            context: None,
            request_timeout: timeout,
            retry_budget: timeout,
            given: Some(GivenCluster::Config { config: Box::new(config), info, rate: None, live: Some(cache) }),
        };
        Cluster::connect(&options).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A LIST with a selector that does not imply weaver's label (Helm's records) is answered
    /// from a watch with that selector, which holds only what it selects.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_list_with_another_selector_is_answered_from_a_watch_of_that_selector() {
        let server = weaver_test_apiserver::TestApiServer::start();
        let cache = LiveCache::running_on(None, Scope::All);
        let cluster = connected(&server, cache.clone(), Duration::from_secs(10)).await;
        let served = cluster.resolve("v1", "Secret").ok().unwrap();
        for (name, labels) in [("helm-record", json!({"owner": "helm"})), ("other", json!({"app": "web"}))] {
            let secret = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": "default", "labels": labels}});
            cluster.apply(&secret, &served, false, false).await.unwrap();
        }
        let target = ListTarget { api_version: "v1".into(), kind: "Secret".into(), namespace: Some("default".into()) };
        let targets = [target.clone()].into();
        let listed = cluster.list(&targets, "owner=helm", ManagedFields::Text, 1).await.unwrap();
        assert_eq!(listed.iter().map(|s| s["metadata"]["name"].clone()).collect::<Vec<_>>(), ["helm-record"]);
        // The watch's LIST (and the WATCH after it) asked for what the selector selects only.
        let read: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/namespaces/default/secrets"))
            .map(|r| r.query)
            .collect();
        assert!(!read.is_empty() && read.iter().all(|q| q.contains("labelSelector=owner%3Dhelm")), "{read:#?}");
        let watches = cache.inner.watches.lock().unwrap();
        let key = ("controller".to_string(), target, Watched::Selected("owner=helm".into()));
        assert_eq!(watches[&key].current.objects.read().unwrap().len(), 1, "only what the selector selects is held");
    }

    /// A write this process made that a selector's watch does not select (weaver's own object,
    /// read with Helm's `owner=helm`) is not waited for there, and stays pending for the watch
    /// of weaver's objects: that read does not LIST around it after a wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_another_selectors_watch_does_not_select_is_not_waited_for_there() {
        let server = weaver_test_apiserver::TestApiServer::start();
        let cache = LiveCache::running_on(None, Scope::All);
        let cluster = connected(&server, cache.clone(), Duration::from_secs(10)).await;
        let target =
            ListTarget { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: Some("default".into()) };
        let targets = [target].into();
        // Helm's watch started, then a write of weaver's, which no watch of weaver's has
        // delivered (none runs yet).
        cluster.list(&targets, "owner=helm", ManagedFields::Text, 1).await.unwrap();
        let served = cluster.resolve("v1", "ConfigMap").ok().unwrap();
        let ours = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ours", "namespace": "default", "labels": {LABEL_RELEASE: "web"}}});
        cluster.apply(&ours, &served, false, false).await.unwrap();
        server.clear_requests();
        let started = Instant::now();
        let helms = cluster.list(&targets, "owner=helm", ManagedFields::Text, 1).await.unwrap();
        assert!(helms.is_empty());
        assert!(started.elapsed() < CATCH_UP / 2, "waited {:?} for a write it never holds", started.elapsed());
        let listed = server.requests().into_iter().filter(|r| r.method == "GET" && !r.query.contains("watch=true"));
        assert_eq!(listed.count(), 0, "Helm's read answered from its watch: {:#?}", server.requests());
        // Weaver's watch, started now, has the write.
        let weavers = cluster.list(&targets, LABEL_RELEASE, ManagedFields::Text, 1).await.unwrap();
        assert_eq!(weavers.len(), 1, "{weavers:?}");
    }

    /// The controller's clusters (a config handed over, with the cache) read within the
    /// request timeout, but their watches may idle as long as a watch lasts: a quiet watch is
    /// not cut and started again every request timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_watch_of_the_controllers_outlasts_the_request_timeout() {
        let server = weaver_test_apiserver::TestApiServer::start();
        let cluster = connected(&server, LiveCache::default(), Duration::from_millis(500)).await;
        let target = ListTarget { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: Some("quiet".into()) };
        let targets = [target].into();
        cluster.list(&targets, LABEL_RELEASE, ManagedFields::Text, 1).await.unwrap();
        // Two request timeouts with nothing to tell.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let watches = server
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/namespaces/quiet/configmaps") && r.query.contains("watch=true"))
            .count();
        assert_eq!(watches, 1, "the watch was started again: {:#?}", server.requests());
    }

    #[tokio::test]
    async fn a_renewed_token_takes_the_watch_over_once_its_own_has_listed() {
        let cache = LiveCache::default();
        let served =
            ServedKind { resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()), namespaced: true };
        let target = ListTarget { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: Some("ns".into()) };
        let identity = "ServiceAccount ns/deployer";
        let old = cache.watch(&client_with(&cache, "old"), identity, &served, &target, Watched::Weavers);
        old.state.send_replace(State::Synced(0));

        let renewed = client_with(&cache, "renewed");
        let answering = cache.watch(&renewed, identity, &served, &target, Watched::Weavers);
        assert!(Arc::ptr_eq(&answering, &old), "the old watch answers while the new one lists");
        let again = cache.watch(&renewed, identity, &served, &target, Watched::Weavers);
        assert!(Arc::ptr_eq(&again, &old), "one new watch, not one a read");
        let key = (identity.to_string(), target.clone(), Watched::Weavers);
        let next = cache.inner.watches.lock().unwrap()[&key].next.clone().unwrap();
        assert!(!Arc::ptr_eq(&next, &old));

        next.state.send_replace(State::Synced(0));
        let answering = cache.watch(&renewed, identity, &served, &target, Watched::Weavers);
        assert!(Arc::ptr_eq(&answering, &next), "the new watch answers once it has listed");
        assert_eq!(cache.watches(), 1);

        // A token the server refuses (expired) hands over at once.
        let third = client_with(&cache, "third");
        next.state.send_replace(State::Refused);
        let answering = cache.watch(&third, identity, &served, &target, Watched::Weavers);
        assert!(!Arc::ptr_eq(&answering, &next), "a refused watch does not answer");
        assert_eq!(*answering.state.borrow(), State::Starting);
    }

    #[test]
    fn a_change_is_another_managers_when_it_is_among_the_newest_entries() {
        let with = |entries: Value| json!({"metadata": {"managedFields": entries.to_string()}});
        let ours = json!({"manager": MANAGER, "operation": "Apply", "time": "2026-11-25T10:00:05Z"});
        let earlier_edit = json!({"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-25T10:00:01Z"});
        let later_edit = json!({"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-25T10:00:09Z"});
        let status =
            json!({"manager": "kube-controller-manager", "subresource": "status", "time": "2026-11-25T10:00:09Z"});
        assert!(!changed_by_another(None, &with(json!([earlier_edit, ours]))));
        assert!(changed_by_another(None, &with(json!([ours, later_edit]))));
        assert!(
            !changed_by_another(None, &with(json!([ours, status]))),
            "a status written by a controller is not drift"
        );
        assert!(!changed_by_another(None, &json!({"metadata": {}})));
    }

    /// As a real API server writes them (Kubernetes 1.32): an update through the `scale`
    /// subresource leaves its managedFields entry without a time.
    #[test]
    fn a_scale_is_another_managers_change_though_its_entry_has_no_time() {
        let at = |generation: i64, entries: Value| json!({"metadata": {"generation": generation, "managedFields": entries.to_string()}});
        let ours = json!({"manager": MANAGER, "operation": "Apply", "time": "2026-11-25T10:00:05Z"});
        let status =
            json!({"manager": "kube-controller-manager", "subresource": "status", "time": "2026-11-25T10:00:09Z"});
        let scale = json!({"manager": "kubectl-scale", "operation": "Update", "subresource": "scale"});
        let held = at(1, json!([ours, status]));
        let scaled = at(2, json!([ours, scale, status]));
        assert!(changed_by_another(Some(&held), &scaled), "the scale raised the generation");
        // The controller's status that follows changes no spec.
        let later_status =
            json!({"manager": "kube-controller-manager", "subresource": "status", "time": "2026-11-25T10:00:12Z"});
        assert!(!changed_by_another(Some(&scaled), &at(2, json!([ours, scale, later_status]))));
        // weaver's own apply raises the generation with its entry the newest.
        let applied = json!({"manager": MANAGER, "operation": "Apply", "time": "2026-11-25T10:00:20Z"});
        assert!(!changed_by_another(Some(&scaled), &at(3, json!([applied, status]))));
        // A controller's status in the second of weaver's apply (as a fast controller writes
        // it) makes weaver's entry one of the newest: the scale is still another's.
        let prompt_status =
            json!({"manager": "kube-controller-manager", "subresource": "status", "time": "2026-11-25T10:00:05Z"});
        let held = at(1, json!([ours, prompt_status]));
        assert!(changed_by_another(Some(&held), &at(2, json!([ours, scale, prompt_status]))));
    }
}
