//! `spec.previews.forge` in one reconcile: its token read as the EnvironmentSync's account and
//! registered with the reconcile's redactor, the open pull requests carrying the labels as the
//! previews' candidates, and each preview's commit status posted when its (commit, state)
//! changes. The requests are `gitops::forge`'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use secrecy::SecretString;

use super::credentials::{secret, value};
use crate::gitops::api::{EnvironmentSync, Forge, PreviewState, PreviewStatus};
use crate::gitops::forge::{Client, CommitState};
use weaver_secrets::Redactor;
use weaver_source::GitRef;

/// The forge of one reconcile, and the statuses it posted.
pub(super) struct Forged {
    client: Arc<Client>,
    /// The statuses' context (GitLab: name): `weaver/<sync namespace>/<sync name>`.
    context: String,
    /// Per preview, the state posted on its commit in this reconcile, or why a post failed.
    posted: BTreeMap<String, Result<CommitState, String>>,
    /// When the listing and the pending statuses must have ended: the previews' `spec.timeout`.
    deadline: Instant,
}

/// How long the statuses posted after the applies may take together, whatever the applies left.
const POSTS_TIME: Duration = Duration::from_secs(60);

/// A branch to preview, or a pull request's head: its branch, commit (for a pull request, the
/// API's), the ref to fetch it by, and of a pull request its number and whether it is a fork's.
pub(super) struct Candidate {
    pub branch: String,
    pub commit: String,
    pub reference: GitRef,
    pub pull_request: Option<u64>,
    pub fork: bool,
}

/// The forge of `sync`'s `forge`, its token read from the Secret it names with `tenant` (the
/// sync's account) and registered with `redactor`: no message, status or Event then quotes it.
pub(super) async fn connect(
    sync: &EnvironmentSync,
    forge: &Forge,
    (tenant, redactor): (&kube::Client, &Redactor),
    deadline: Instant,
) -> Result<Forged, String> {
    let namespace = sync.namespace().unwrap_or_default();
    let name = &forge.secret_ref.name;
    let field = "spec.previews.forge.secretRef";
    let found = secret(tenant, &namespace, name, field).await.map_err(|(_, message)| message)?;
    let token = value(&found, "token").map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(format!("Secret {namespace}/{name} ({field}) has no `token`: give the forge's API token under it"));
    };
    Ok(Forged {
        client: Arc::new(Client::new(
            forge,
            (SecretString::from(token), format!("Secret {namespace}/{name} ({field})")),
            redactor.clone(),
        )),
        context: format!("weaver/{namespace}/{}", sync.name_any()),
        posted: BTreeMap::new(),
        deadline,
    })
}

impl Forged {
    /// The open pull requests carrying every one of `labels`, with the ref each is fetched by.
    pub(super) async fn candidates(&self, labels: &[String], redactor: &Redactor) -> Result<Vec<Candidate>, String> {
        let (client, labels, deadline) = (self.client.clone(), labels.to_vec(), self.deadline);
        let listed = tokio::task::spawn_blocking(move || client.open_requests(&labels, deadline)).await;
        let requests = match listed {
            Ok(Ok(requests)) => requests,
            Ok(Err(err)) => return Err(redactor.redact(&err).into_owned()),
            Err(join) => return Err(redactor.redact(&join.to_string()).into_owned()),
        };
        Ok(requests
            .into_iter()
            .map(|request| Candidate {
                reference: GitRef::Ref(self.client.head_ref(request.number)),
                branch: request.branch,
                commit: request.sha,
                pull_request: Some(request.number),
                fork: request.fork,
            })
            .collect())
    }

    /// Posts `pending` on `preview`'s commit as its apply starts, unless that commit has had a
    /// status posted before (`before`): a commit applied again says nothing until its result
    /// changes.
    pub(super) async fn starting(
        &mut self,
        name: &str,
        commit: &str,
        before: Option<&PreviewStatus>,
        redactor: &Redactor,
    ) {
        if before.is_some_and(|b| b.commit == commit && b.commit_status.is_some()) {
            return;
        }
        let description = format!("applying preview {name}");
        let posted = self.post(commit, CommitState::Pending, &description, (redactor, self.deadline)).await;
        self.posted.insert(name.to_string(), posted.map(|()| CommitState::Pending));
    }

    /// Each preview's status (Ready: `success`; Failed: `failure`, with its message) posted on
    /// its commit when that differs from the one last posted there (`previous`, and this
    /// reconcile's), recorded in `commitStatus`; a post that failed says so in its message and
    /// is tried again at the next reconcile. Waiting previews get none.
    pub(super) async fn settle(
        &mut self,
        previews: &mut [PreviewStatus],
        previous: &[PreviewStatus],
        redactor: &Redactor,
    ) {
        // After the applies, which may have spent the previews' time: the posts have their own.
        let deadline = self.deadline.max(Instant::now() + POSTS_TIME);
        for preview in previews.iter_mut() {
            let wanted = match preview.state {
                PreviewState::Ready => CommitState::Success,
                PreviewState::Failed => CommitState::Failure,
                _ => continue,
            };
            let earlier = previous
                .iter()
                .find(|p| p.name == preview.name && p.commit == preview.commit)
                .and_then(|p| p.commit_status.clone());
            let (last, failed) = match self.posted.remove(&preview.name) {
                Some(Ok(state)) => (Some(state.as_str().to_string()), None),
                Some(Err(why)) => (earlier, Some(why)),
                None => (earlier, None),
            };
            preview.commit_status = last;
            let failed = match preview.commit_status.as_deref() == Some(wanted.as_str()) {
                true => failed,
                false => {
                    let description = match (&preview.message, wanted) {
                        (Some(message), CommitState::Failure) => message.clone(),
                        (None, CommitState::Failure) => format!("preview {} failed", preview.name),
                        _ => format!("preview {} is Ready in namespace {}", preview.name, preview.namespace),
                    };
                    match self.post(&preview.commit, wanted, &description, (redactor, deadline)).await {
                        Ok(()) => {
                            preview.commit_status = Some(wanted.as_str().to_string());
                            None
                        }
                        Err(why) => Some(why),
                    }
                }
            };
            if let Some(why) = failed {
                let said = format!("its commit status could not be posted: {why}");
                preview.message = Some(match preview.message.take() {
                    Some(message) => format!("{message}; {said}"),
                    None => said,
                });
            }
        }
    }

    async fn post(
        &self,
        commit: &str,
        state: CommitState,
        description: &str,
        (redactor, deadline): (&Redactor, Instant),
    ) -> Result<(), String> {
        let (client, commit, context) = (self.client.clone(), commit.to_string(), self.context.clone());
        let description = redactor.redact(description).into_owned();
        let posted =
            tokio::task::spawn_blocking(move || client.post_status(&commit, state, (&description, &context), deadline));
        match posted.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(redactor.redact(&err).into_owned()),
            Err(join) => Err(redactor.redact(&join.to_string()).into_owned()),
        }
    }
}
