//! Changes as they happen, for `weaver ui`'s pages that update themselves while an apply or a
//! reconcile runs: where each watched resource stands (a resourceVersion, a *mark*), and the
//! first change after the marks, waited for with a WATCH from them (no LIST, no polling). A
//! page's next wait starts from the marks the last one ended at, so nothing between two waits
//! is missed.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{ListParams, WatchEvent, WatchParams};

use super::Cluster;
use weaver_core::error::{Error, Result};

/// What a page watches: one resource in one namespace, the objects the selectors select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub labels: Option<String>,
    pub fields: Option<String>,
}

/// How a wait for a change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// An object changed (`Deployment web`): the marks after it.
    Changed { marks: Vec<String>, what: String },
    /// Nothing changed in the time given: the marks, moved on by the server's bookmarks.
    Quiet { marks: Vec<String> },
    /// The server no longer keeps what happened since a mark (410 Gone): marks must be read
    /// again, and anything may have changed.
    Expired,
}

impl Watched {
    fn params<P: Default>(&self, labels: impl Fn(P, &str) -> P, fields: impl Fn(P, &str) -> P) -> P {
        let params = self.labels.iter().fold(P::default(), |p, selector| labels(p, selector));
        self.fields.iter().fold(params, |p, selector| fields(p, selector))
    }

    fn doing(&self, verb: &str) -> String {
        let place = self.namespace.as_ref().map_or_else(String::new, |ns| format!(" in namespace {ns}"));
        format!("{verb} {} {}{place}", self.api_version, self.kind)
    }
}

impl Cluster {
    /// Where each of `targets` stands now: one LIST of at most one object each.
    pub async fn watch_marks(&self, targets: &[Watched]) -> Result<Vec<String>> {
        let marks = targets.iter().map(|target| async move {
            let doing = target.doing("listing");
            let api = self.api(&self.watched_kind(target)?, target.namespace.as_deref());
            let params = target.params(|p: ListParams, s| p.labels(s), |p, s| p.fields(s)).limit(1);
            let list = self
                .retry
                .run(|| api.list_metadata(&params))
                .await
                .map_err(|gave_up| gave_up.into_error(&doing, &self.info))?;
            Ok(list.metadata.resource_version.unwrap_or_default())
        });
        futures::future::try_join_all(marks).await
    }

    /// The first change to any of `targets` after `marks` (as [`Cluster::watch_marks`] gave
    /// them, or an earlier wait), waiting at most `within` (and never longer than a request
    /// may take).
    pub async fn next_change(&self, targets: &[Watched], marks: &[String], within: Duration) -> Result<Waited> {
        let within =
            within.min(self.info.request_timeout.saturating_sub(Duration::from_secs(2))).max(Duration::from_secs(1));
        let mut streams = Vec::new();
        for (at, (target, mark)) in targets.iter().zip(marks).enumerate() {
            let doing = target.doing("watching");
            let api = self.api(&self.watched_kind(target)?, target.namespace.as_deref());
            // Bookmarks (asked for by default) move a quiet watch's mark on.
            let params =
                target.params(|p: WatchParams, s| p.labels(s), |p, s| p.fields(s)).timeout(within.as_secs() as u32);
            let stream = match api.watch(&params, mark).await {
                Ok(stream) => stream,
                Err(kube::Error::Api(status)) if status.code == 410 => return Ok(Waited::Expired),
                Err(err) => return Err(super::error::request_error(err, &doing, &self.info)),
            };
            streams.push(stream.map(move |event| (at, event)).boxed());
        }
        let mut marks = marks.to_vec();
        let mut events = futures::stream::select_all(streams);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(Some((at, event))) = tokio::time::timeout_at(deadline, events.next()).await else {
                return Ok(Waited::Quiet { marks });
            };
            let doing = targets[at].doing("watching");
            let object = match event.map_err(|err| super::error::request_error(err, &doing, &self.info))? {
                WatchEvent::Added(object) | WatchEvent::Modified(object) | WatchEvent::Deleted(object) => object,
                WatchEvent::Bookmark(bookmark) => {
                    marks[at] = bookmark.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => return Ok(Waited::Expired),
                WatchEvent::Error(status) => {
                    return Err(Error::new(format!(
                        "{doing}: the server answered {}: {}",
                        status.code, status.message
                    )));
                }
            };
            marks[at] = object.metadata.resource_version.clone().unwrap_or_default();
            let kind = object.types.as_ref().map_or(targets[at].kind.as_str(), |t| t.kind.as_str());
            let what = format!("{kind} {}", object.metadata.name.as_deref().unwrap_or_default());
            return Ok(Waited::Changed { marks, what });
        }
    }

    fn watched_kind(&self, target: &Watched) -> Result<super::ServedKind> {
        self.resolve(&target.api_version, &target.kind).map_err(|_| {
            Error::new(format!(
                "the cluster of context `{}` does not serve {} {}",
                self.info.context, target.api_version, target.kind
            ))
        })
    }
}
