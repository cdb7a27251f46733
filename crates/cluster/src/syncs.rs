//! EnvironmentSyncs (`weaver.example.com/v1beta1`), for `weaver sync`: reading them, merge
//! patches of their spec and annotations, and watching one. A connection of its own, without
//! discovery: the kind is known, and `sync get` is one request.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use serde_json::Value;

use super::retry::{GaveUp, Retrier};
use super::{ClusterInfo, ConnectOptions};
use weaver_api::environment_sync::EnvironmentSync;
use weaver_core::error::{Error, Result};
use weaver_core::manifest::MANAGER;
use weaver_net::retry::RetryPolicy;

/// A client for EnvironmentSyncs of the kubeconfig's cluster.
pub struct Syncs {
    client: kube::Client,
    /// For [`Syncs::watch`]: reads may idle as long as a watch lasts.
    watching: kube::Client,
    pub info: ClusterInfo,
    /// The context's namespace (`default` when it names none), as kubectl's.
    pub default_namespace: String,
    retry: Retrier,
}

/// How a merge patch guarded by a resourceVersion ended.
pub enum Patched {
    Done(Box<EnvironmentSync>),
    /// The object changed since that resourceVersion (409 Conflict).
    Changed,
}

impl Syncs {
    pub async fn connect(options: &ConnectOptions) -> Result<Syncs> {
        let (config, info) = super::config::config(options).await?;
        let default_namespace = config.default_namespace.clone();
        let client = |config| kube::Client::try_from(config).map_err(|err| super::client_error(&err, &info));
        let watching = client(super::for_watching(config.clone()))?;
        let client = client(config)?;
        let retry = Retrier::new(RetryPolicy::within(info.retry_budget));
        Ok(Syncs { client, watching, info, default_namespace, retry })
    }

    fn api(&self, namespace: Option<&str>) -> Api<EnvironmentSync> {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    fn error(&self, gave_up: GaveUp, doing: &str) -> Error {
        let not_served = matches!(&gave_up.error, kube::Error::Api(status)
            if status.code == 404 && (status.details.as_ref().is_none_or(|d| d.name.is_empty())));
        let err = gave_up.into_error(doing, &self.info);
        if not_served {
            // A LIST answers 404 only when the kind is not served.
            return err.with_help(
                "the cluster may not serve EnvironmentSyncs: install the CRD with \
                 `weaver operator crd environmentsync | kubectl apply --server-side -f -`",
            );
        }
        err
    }

    /// Every EnvironmentSync of `namespace` (None: of every namespace) that `selector` selects.
    pub async fn list(&self, namespace: Option<&str>, selector: Option<&str>) -> Result<Vec<EnvironmentSync>> {
        let doing = match namespace {
            Some(ns) => format!("listing environmentsyncs in namespace {ns}"),
            None => "listing environmentsyncs in all namespaces".to_string(),
        };
        let params = selector.map_or_else(ListParams::default, |s| ListParams::default().labels(s));
        let api = self.api(namespace);
        let list = self.retry.run(|| api.list(&params)).await.map_err(|gave_up| self.error(gave_up, &doing))?;
        Ok(list.items)
    }

    /// The EnvironmentSync, or None when there is none of that name.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<EnvironmentSync>> {
        let doing = format!("reading environmentsync {namespace}/{name}");
        let api = self.api(Some(namespace));
        self.retry.run(|| api.get_opt(name)).await.map_err(|gave_up| self.error(gave_up, &doing))
    }

    /// A JSON merge patch of the object, as field manager `weaver`; `doing` says what it is
    /// for, in errors. With `metadata.resourceVersion` in `patch`, see [`Patched::Changed`].
    pub async fn merge_patch(&self, namespace: &str, name: &str, patch: &Value, doing: &str) -> Result<Patched> {
        self.merge_patch_as(MANAGER, namespace, name, patch, doing).await
    }

    /// [`Syncs::merge_patch`] as field manager `manager`: the managed fields' entry of a
    /// manager changes time only when that manager writes.
    pub async fn merge_patch_as(
        &self,
        manager: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
        doing: &str,
    ) -> Result<Patched> {
        let doing = format!("{doing} environmentsync {namespace}/{name}");
        let api = self.api(Some(namespace));
        let params = PatchParams { field_manager: Some(manager.to_string()), ..PatchParams::default() };
        let patch = Patch::Merge(patch);
        match self.retry.run(|| api.patch(name, &params, &patch)).await {
            Ok(patched) => Ok(Patched::Done(Box::new(patched))),
            Err(GaveUp { error: kube::Error::Api(status), .. }) if status.code == 409 => Ok(Patched::Changed),
            Err(gave_up) => Err(self.error(gave_up, &doing)),
        }
    }

    /// The user name the API server knows the connection's credentials by (a SelfSubjectReview,
    /// GA since 1.28): who an approval names as its approver.
    pub async fn user_name(&self) -> Result<String> {
        use k8s_openapi::api::authentication::v1::SelfSubjectReview;
        let api = Api::<SelfSubjectReview>::all(self.client.clone());
        let (review, params) = (SelfSubjectReview::default(), PostParams::default());
        let answer = self.retry.run(|| api.create(&params, &review)).await.map_err(|gave_up| {
            gave_up.into_error("asking the API server who you are (a SelfSubjectReview)", &self.info)
        })?;
        answer.status.and_then(|s| s.user_info).and_then(|u| u.username).filter(|name| !name.is_empty()).ok_or_else(
            || Error::new("the API server's SelfSubjectReview names no user for these credentials".to_string()),
        )
    }

    /// The object each time it changes (None once it is gone), from a watch that starts again
    /// (backing off) when it fails; a failure is an item, and the stream goes on.
    pub fn watch(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Stream<Item = std::result::Result<Option<EnvironmentSync>, String>> + Send + use<> {
        let api: Api<EnvironmentSync> = Api::namespaced(self.watching.clone(), namespace);
        kube::runtime::watcher::watch_object(api, name)
            .default_backoff()
            .map(|item| item.map_err(|err| super::error::innermost(&err)))
    }
}

/// Every EnvironmentSync a label selector selects, kept by one watch: the controller's UI reads
/// its pages from it (no LIST per page view). Cheap to clone.
#[derive(Clone)]
pub struct SyncCache {
    store: kube::runtime::reflector::Store<EnvironmentSync>,
    /// Ticks at each event the watch applies: a page waiting for a change wakes then.
    changes: tokio::sync::watch::Receiver<u64>,
}

impl SyncCache {
    /// The cache, and the watch that fills it (it runs while polled, starting again, backing
    /// off, when it fails).
    pub fn watch(
        client: kube::Client,
        selector: Option<&str>,
    ) -> (SyncCache, impl std::future::Future<Output = ()> + Send + 'static) {
        let mut config = kube::runtime::watcher::Config::default();
        if let Some(selector) = selector {
            config = config.labels(selector);
        }
        let (store, writer) = kube::runtime::reflector::store();
        let (changed, changes) = tokio::sync::watch::channel(0u64);
        let watching = kube::runtime::watcher(Api::<EnvironmentSync>::all(client), config)
            .default_backoff()
            .reflect(writer)
            .for_each(move |_| {
                changed.send_modify(|tick| *tick = tick.wrapping_add(1));
                std::future::ready(())
            });
        (SyncCache { store, changes }, watching)
    }

    /// A cache of `syncs` as given, for benchmarks and tests of what reads it.
    pub fn of(syncs: impl IntoIterator<Item = EnvironmentSync>) -> SyncCache {
        let (store, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
        for sync in syncs {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(sync));
        }
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        // Nothing changes it: waits for a change last until they give up.
        let (_, changes) = tokio::sync::watch::channel(0u64);
        SyncCache { store, changes }
    }

    /// Waits until the watch has listed once.
    pub async fn ready(&self) {
        // Only a dropped writer fails it, and the watch holds the writer while it runs.
        let _ = self.store.wait_until_ready().await;
    }

    /// Every EnvironmentSync, by namespace then name.
    pub fn all(&self) -> Vec<std::sync::Arc<EnvironmentSync>> {
        let mut syncs = self.store.state();
        syncs.sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
        syncs
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<EnvironmentSync>> {
        self.store.get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
    }

    /// Where the EnvironmentSync stands: its resourceVersion, `gone` when there is none.
    pub fn mark(&self, namespace: &str, name: &str) -> String {
        let sync = self.get(namespace, name);
        sync.and_then(|sync| sync.metadata.resource_version.clone()).unwrap_or_else(|| "gone".to_string())
    }

    /// Waits, at most `within`, until the EnvironmentSync is no longer at `mark` (see
    /// [`SyncCache::mark`]): its new mark, or None when it did not change. From the watch
    /// already running: no request to the API server.
    pub async fn next_change(&self, namespace: &str, name: &str, mark: &str, within: Duration) -> Option<String> {
        let mut changes = self.changes.clone();
        let waiting = async {
            loop {
                // Seen before reading, so a change after the read wakes the wait.
                changes.borrow_and_update();
                let now = self.mark(namespace, name);
                if now != mark {
                    return now;
                }
                if changes.changed().await.is_err() {
                    // The watch stopped (the process is ending): nothing more will change.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(within, waiting).await.ok()
    }
}
