//! Preview environments (`spec.previews`), after the EnvironmentSync's own environments: the
//! remote's branches listed, each matching one fetched and its preview (the base environment in
//! a namespace of its own, under an environment name of its own) applied with the same `Run`
//! as the environments, as the same account; a preview whose branch went or expired (or every
//! one, when `spec.previews` is removed, or one whose deletion was asked for: `weaver previews
//! delete`) has the releases its records list removed as `installed: false` removes a release,
//! then its namespace deleted. What to have is decided by `gitops::previews`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use secrecy::SecretString;

use super::forge;
use super::{Run, Shared, weaver_repository};
use crate::gitops::api::{EnvironmentSync, PreviewState, PreviewStatus};
use crate::gitops::plan::{Work, short};
use crate::gitops::previews::{self, Branch, Preview, Settings};
use crate::gitops::status::Previewed;
use weaver_core::manifest::LABEL_ENVIRONMENT;
use weaver_engine::action::Keys;
use weaver_engine::action::fleet::{EnvironmentSelection, select_environments};
use weaver_project::Environment;
use weaver_source::{FetchRequest, Fetched, GitRef};

/// The label of a preview's namespace: `<sync namespace>.<sync name>.<preview name>`. Only a
/// namespace carrying this preview's is written to or deleted.
pub const PREVIEW_LABEL: &str = "weaver.example.com/preview";

/// Every preview as `settings` wants it at this reconcile: the branches `request`'s remote has
/// (as read since `asked`, when the reconcile was asked for), each matching one fetched; `work` applies every preview again (a push to the sync's branch,
/// a spec changed, a reconcile asked for), else only those not Ready at their branch's head.
/// `run` is the sync's, at its own commit.
pub(super) async fn reconcile(
    sync: &EnvironmentSync,
    settings: &Settings,
    run: &Run<'_>,
    (request, tenant, shared): (&FetchRequest, &kube::Client, &Shared),
    (work, asked): (Work, Instant),
) -> Previewed {
    let namespace = sync.namespace().unwrap_or_default();
    let previous: Vec<PreviewStatus> = sync.status.as_ref().map(|s| s.previews.clone()).unwrap_or_default();
    // Every bound of the sync holds for its previews together, the forge's listing included:
    // what spec.timeout leaves unfetched or unapplied waits for the next reconcile, which comes
    // at spec.retryInterval.
    let deadline = Instant::now() + run.spec.timeout;
    let mut forged = match &settings.forge {
        Some(forge) => Some(forge::connect(sync, forge, (tenant, run.redactor), deadline).await),
        None => None,
    };
    let listing = match (&settings.labels, &forged) {
        (Some(labels), Some(Ok(forged))) => forged.candidates(labels, run.redactor).await,
        (Some(_), Some(Err(why))) => Err(why.clone()),
        _ => branches(request, shared, run, asked).await,
    };
    let listed = match listing {
        Ok(listed) => listed,
        // Nothing is pruned on a failed listing: the previews stay as they were, and say why.
        Err(why) => return unlisted(previous, settings, &why),
    };
    let matching: Vec<forge::Candidate> = {
        let names: Vec<String> =
            settings.matching(listed.iter().map(|c| c.branch.as_str())).into_iter().map(str::to_string).collect();
        listed.into_iter().filter(|c| names.contains(&c.branch)).collect()
    };
    // Each matching branch's head (a pull request's, by the forge's ref for it): found in the
    // mirror when it holds the listed commit (a branch that did not move costs no request), else
    // fetched. Its commit's time chooses which expire and which wait (one that could not be
    // fetched counts as new).
    let fetching = {
        let (cache, request) = (shared.cache.clone(), request.clone());
        tokio::task::spawn_blocking(move || {
            matching
                .into_iter()
                .map(|candidate| {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let asked = FetchRequest {
                        reference: candidate.reference.clone(),
                        timeout: left.min(request.timeout),
                        ..request.clone()
                    };
                    let got = match cache.held(&asked, &candidate.commit) {
                        Some(held) => Some(Ok(held)),
                        None if left.is_zero() => None,
                        None => Some(cache.fetch(&asked)),
                    };
                    (candidate, got)
                })
                .collect::<Vec<_>>()
        })
    };
    let heads = match fetching.await {
        Ok(heads) => heads,
        Err(join) => return unlisted(previous, settings, &format!("the fetch of the branches stopped: {join}")),
    };
    let fetched: Vec<(Branch, Head, GitRef)> = heads
        .into_iter()
        .map(|(candidate, got)| {
            let head = match got {
                // The forge's ref lags its API at times: the preview waits for them to agree.
                Some(Ok(at)) if candidate.pull_request.is_some() && at.commit != candidate.commit => {
                    Head::Failed(format!(
                        "the forge's head of pull request #{} is {}, and its {} is at {}: waiting for them to agree, \
                         at the next reconcile",
                        candidate.pull_request.unwrap_or_default(),
                        short(&candidate.commit),
                        candidate.reference,
                        short(&at.commit)
                    ))
                }
                Some(Ok(at)) => Head::At(at),
                Some(Err(err)) => {
                    Head::Failed(format!("the branch could not be fetched: {}", run.redactor.redact(&err.to_string())))
                }
                None => Head::Later,
            };
            let (commit, time) = match &head {
                Head::At(at) => (at.commit.clone(), at.commit_time().unwrap_or_else(|| shared.clock.now())),
                _ => (candidate.commit.clone(), shared.clock.now()),
            };
            let (pull_request, fork) = (candidate.pull_request, candidate.fork);
            (Branch { name: candidate.branch, commit, time, pull_request, fork }, head, candidate.reference)
        })
        .collect();
    let made: BTreeMap<previews::Source, String> = previous
        .iter()
        .filter(|p| p.state != PreviewState::Waiting && p.state != PreviewState::Deleted)
        .map(|p| (previews::Source::of(&p.branch, p.pull_request), p.name.clone()))
        .collect();
    let deletions = previews::deletions(sync.annotations());
    let branches: Vec<Branch> = fetched.iter().map(|(branch, _, _)| branch.clone()).collect();
    let wanted = settings.previews(&branches, (&made, &deletions), shared.clock.now(), (&namespace, &sync.name_any()));
    // `spec.source.verify` holds for previews too: the trust list read once, each preview's head
    // checked before anything of it is applied.
    let trust = match &run.spec.verify {
        Some((_, name)) => {
            Some(super::verification::trust_list(tenant, &namespace, name).await.map_err(|(_, why)| why))
        }
        None => None,
    };
    // Those that failed last time go last, whatever their commit: one that spends the time
    // never keeps the others from their turn, nor does a new push to it.
    let failed_before =
        |preview: &Preview| previous.iter().any(|p| p.name == preview.name && p.state == PreviewState::Failed);
    let mut order: Vec<&Preview> = wanted.iter().collect();
    order.sort_by_key(|preview| failed_before(preview));
    let mut done = Previewed::default();
    for preview in order {
        let before = previous.iter().find(|p| p.name == preview.name);
        // A status written before lastAppliedCommit was: Ready says it.
        let last_applied = before.and_then(|b| {
            b.last_applied_commit.clone().or_else(|| (b.state == PreviewState::Ready).then(|| b.commit.clone()))
        });
        // Applied before under another environment name (spec.previews.environment changed):
        // what that one applied goes first, by its records, and it stays the status's until then.
        let renamed = before.map(|b| b.environment.as_str()).filter(|e| !e.is_empty() && *e != preview.environment);
        let status = |state, message: Option<String>, last_applied_commit: Option<String>| PreviewStatus {
            name: preview.name.clone(),
            branch: preview.branch.clone(),
            pull_request: preview.pull_request,
            commit: preview.commit.clone(),
            namespace: preview.namespace.clone(),
            environment: preview.environment.clone(),
            commit_status: None,
            url: preview.url.clone().or_else(|| before.and_then(|b| b.url.clone())),
            state,
            last_applied_commit,
            message,
        };
        if preview.deleted {
            // Pruned below, as a preview no longer wanted is.
            let why = format!("deleted at {} on request: a push to its branch makes it again", short(&preview.commit));
            done.previews.push(PreviewStatus { url: None, ..status(PreviewState::Deleted, Some(why), None) });
            continue;
        }
        if let Some(why) = &preview.waiting {
            done.previews.push(status(PreviewState::Waiting, Some(why.clone()), None));
            continue;
        }
        // Kept as it was (a new one waiting), saying why.
        let kept = |why: String, new: PreviewState| {
            before
                .map(|b| PreviewStatus { message: Some(why.clone()), ..b.clone() })
                .unwrap_or_else(|| status(new, Some(why), None))
        };
        let later = format!(
            "not {} at this reconcile: the previews' time (spec.timeout, {} s) ran out; at the next one",
            if before.is_some() { "updated" } else { "made" },
            run.spec.timeout.as_secs()
        );
        let of_preview = |(branch, _, _): &&(Branch, Head, GitRef)| {
            (&branch.name, branch.pull_request) == (&preview.branch, preview.pull_request)
        };
        let (_, head, reference) = fetched.iter().find(of_preview).expect("listed");
        let at = match head {
            Head::At(at) => at,
            Head::Failed(why) => {
                done.previews.push(kept(why.clone(), PreviewState::Failed));
                continue;
            }
            Head::Later => {
                done.unfinished = true;
                done.previews.push(kept(later, PreviewState::Waiting));
                continue;
            }
        };
        let current =
            before.is_some_and(|b| b.state == PreviewState::Ready && b.commit == preview.commit) && renamed.is_none();
        if current && work != Work::Apply {
            let unread = before.and_then(|b| b.message.clone()).filter(|m| m.starts_with(URL_UNREAD));
            done.previews.push(status(PreviewState::Ready, unread, last_applied));
            continue;
        }
        // What is left of the previews' time is this one's bound: its fetches, render and apply.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            done.unfinished = true;
            done.previews.push(kept(later, PreviewState::Waiting));
            continue;
        }
        let bounded = crate::gitops::plan::Settings { timeout: left, ..run.spec.clone() };
        let bounded_run = run.at(run.fetched, run.repository.clone(), run.keys.clone(), &bounded);
        let mut old_removed = renamed.is_none();
        if let Some(Ok(forged)) = &mut forged {
            forged.starting(&preview.name, &preview.commit, before, run.redactor).await;
        }
        let applied = async {
            match (&trust, &run.spec.verify) {
                (Some(Ok(trust)), Some(verify)) => {
                    let reference = reference.clone();
                    let asked = FetchRequest { reference, timeout: left.min(request.timeout), ..request.clone() };
                    let checking = (shared.cache.clone(), at, asked);
                    super::verification::check(sync, verify, trust.clone(), checking).await.map_err(|(_, why)| why)?;
                }
                (Some(Err(why)), _) => return Err(why.clone()),
                _ => {}
            }
            if let Some(old) = renamed {
                remove_releases(old, &preview.namespace, &bounded_run)
                    .await
                    .map_err(|why| format!("what it applied as environment {old} could not be removed: {why}"))?;
                old_removed = true;
            }
            apply(sync, settings, preview, &bounded_run, at, tenant).await
        }
        .await;
        match applied {
            Ok(()) => {
                if last_applied.is_none() {
                    done.created.push(format!(
                        "preview {} of branch {} applied at {} in namespace {}",
                        preview.name,
                        preview.branch,
                        short(&preview.commit),
                        preview.namespace
                    ));
                }
                let ready = status(PreviewState::Ready, None, Some(preview.commit.clone()));
                done.previews.push(match (&preview.url, ingress_url(preview, tenant).await) {
                    (Some(_), _) => ready,
                    (None, Ok(url)) => PreviewStatus { url, ..ready },
                    (None, Err(why)) => PreviewStatus { url: None, message: Some(why), ..ready },
                });
            }
            Err(message) => {
                let failed = status(PreviewState::Failed, Some(message), last_applied);
                // Its records are still under the old name until that was removed.
                let environment = match (old_removed, renamed) {
                    (false, Some(old)) => old.to_string(),
                    _ => failed.environment.clone(),
                };
                done.previews.push(PreviewStatus { environment, ..failed });
            }
        }
    }
    let kept: BTreeSet<&str> = done.previews.iter().map(|p| p.name.as_str()).collect();
    let deleted: BTreeSet<String> =
        done.previews.iter().filter(|p| p.state == PreviewState::Deleted).map(|p| p.name.clone()).collect();
    let active: BTreeSet<&str> = done
        .previews
        .iter()
        .filter(|p| p.state != PreviewState::Waiting && p.state != PreviewState::Deleted)
        .map(|p| p.name.as_str())
        .collect();
    // Made before, and no longer wanted (its branch gone or expired, now over the maximum, or
    // its deletion asked for).
    let gone: Vec<(PreviewStatus, String)> = previous
        .iter()
        .filter(|p| p.state != PreviewState::Waiting && p.state != PreviewState::Deleted)
        .filter(|p| !active.contains(p.name.as_str()))
        .map(|p| {
            let why = match (deleted.contains(&p.name), kept.contains(p.name.as_str())) {
                (true, _) => "its deletion was asked for (weaver previews delete)".to_string(),
                (false, true) => "over spec.previews.max".to_string(),
                (false, false) => match p.pull_request {
                    Some(number) => format!(
                        "its pull request #{number} is closed, merged or no longer carries \
                         spec.previews.pullRequests.labels"
                    ),
                    None => format!(
                        "its branch {} is gone or its last commit expired (spec.previews.expireAfter)",
                        p.branch
                    ),
                },
            };
            let environment = match p.environment.is_empty() {
                true => settings.environment_of(&p.name),
                false => p.environment.clone(),
            };
            (PreviewStatus { environment, ..p.clone() }, why)
        })
        .collect();
    // One asked to be deleted that cannot be pruned is Failed, not Deleted, until it is.
    let kept: BTreeSet<String> = kept.into_iter().filter(|name| !deleted.contains(*name)).map(str::to_string).collect();
    prune_all(sync, gone, &kept, run, tenant, &mut done).await;
    match &mut forged {
        Some(Ok(forged)) => forged.settle(&mut done.previews, &previous, run.redactor).await,
        // Said by each, kept as it was: posted when the forge is read again.
        Some(Err(why)) => {
            for preview in done.previews.iter_mut().filter(|p| p.state != PreviewState::Waiting) {
                let before = previous.iter().find(|p| p.name == preview.name && p.commit == preview.commit);
                preview.commit_status = before.and_then(|b| b.commit_status.clone());
                let said = format!("its commit status could not be posted: {why}");
                preview.message = Some(preview.message.take().map_or(said.clone(), |m| format!("{m}; {said}")));
            }
        }
        None => {}
    }
    done
}

/// The remote's branches, each a candidate: as the sync's own fetch read them when it read the
/// remote after the reconcile was asked for (`asked`), else listed now.
async fn branches(
    request: &FetchRequest,
    shared: &Shared,
    run: &Run<'_>,
    asked: Instant,
) -> Result<Vec<forge::Candidate>, String> {
    let listing = {
        let (cache, request) = (shared.cache.clone(), request.clone());
        tokio::task::spawn_blocking(move || cache.branches_since(&request, asked)).await
    };
    match listing {
        Ok(Ok(listed)) => Ok(listed
            .into_iter()
            .map(|(branch, commit)| forge::Candidate {
                reference: GitRef::Branch(branch.clone()),
                branch,
                commit,
                pull_request: None,
                fork: false,
            })
            .collect()),
        Ok(Err(err)) => Err(run.redactor.redact(&err.to_string()).into_owned()),
        Err(join) => Err(join.to_string()),
    }
}

/// A matching branch's head at this reconcile.
enum Head {
    /// In the mirror.
    At(Fetched),
    /// Its fetch failed: why.
    Failed(String),
    /// Not fetched: the previews' time ran out first.
    Later,
}

/// Every preview of the status pruned: `spec.previews` was removed.
pub(super) async fn remove_all(sync: &EnvironmentSync, run: &Run<'_>, tenant: &kube::Client) -> Previewed {
    let previous: Vec<PreviewStatus> = sync.status.as_ref().map(|s| s.previews.clone()).unwrap_or_default();
    let gone = previous
        .into_iter()
        .filter(|p| p.state != PreviewState::Waiting && p.state != PreviewState::Deleted)
        .map(|p| (p, "spec.previews was removed".to_string()))
        .collect();
    let mut done = Previewed::default();
    prune_all(sync, gone, &BTreeSet::new(), run, tenant, &mut done).await;
    done
}

/// Each of `gone` (with why it goes) pruned, said in `done`; one that could not be is kept in the
/// status as Failed, saying why, unless it is still listed (`kept`: over the maximum, waiting).
async fn prune_all(
    sync: &EnvironmentSync,
    gone: Vec<(PreviewStatus, String)>,
    kept: &BTreeSet<String>,
    run: &Run<'_>,
    tenant: &kube::Client,
    done: &mut Previewed,
) {
    let mut unpruned = Vec::new();
    for (preview, why) in gone {
        match prune(sync, &preview, run, tenant).await {
            // Never made (it failed before its namespace was): nothing to say.
            Ok(false) => {}
            Ok(true) => done.pruned.push(format!(
                "preview {} pruned ({why}): its objects, records and namespace {} deleted",
                preview.name, preview.namespace
            )),
            // Tried again at the next reconcile: the status keeps it until it is gone.
            Err(message) if !kept.contains(&preview.name) => unpruned.push(PreviewStatus {
                state: PreviewState::Failed,
                message: Some(format!("{why}, but it could not be pruned: {message}")),
                ..preview
            }),
            Err(message) => tracing::warn!(preview = preview.name, "not pruned: {message}"),
        }
    }
    // One asked to be deleted stays Failed, not Deleted, until it is pruned.
    done.previews.retain(|p| !unpruned.iter().any(|u| u.name == p.name));
    done.previews.extend(unpruned);
    done.previews.sort_by(|a, b| a.name.cmp(&b.name));
}

/// The previews as they were, each saying why this reconcile did not look at them.
fn unlisted(previous: Vec<PreviewStatus>, settings: &Settings, why: &str) -> Previewed {
    let what = if settings.labels.is_some() { "pull requests" } else { "branches" };
    let previews = previous
        .into_iter()
        .map(|p| PreviewStatus { message: Some(format!("the {what} could not be listed: {why}")), ..p })
        .collect();
    Previewed { previews, ..Previewed::default() }
}

/// What a Ready preview's message begins with when its Ingresses could not be listed: said
/// at each reconcile until its next apply reads them again.
const URL_UNREAD: &str = "its URL could not be read";

/// The URL of the first Ingress, by name, that the preview applied in its namespace (labelled
/// with its environment name); why none could be read, as the preview's message.
async fn ingress_url(preview: &Preview, tenant: &kube::Client) -> Result<Option<String>, String> {
    let ingresses: Api<Ingress> = Api::namespaced(tenant.clone(), &preview.namespace);
    let applied = ListParams::default().labels(&format!("{LABEL_ENVIRONMENT}={}", preview.environment));
    let mut listed = ingresses
        .list(&applied)
        .await
        .map_err(|err| format!("{URL_UNREAD}: listing the Ingresses of namespace {}: {err}", preview.namespace))?;
    listed.items.sort_by_key(|ingress| ingress.name_any());
    Ok(listed.items.iter().find_map(previews::ingress_url))
}

/// The preview's namespace made (or found, its own), and its environment applied at its
/// branch's commit `at`, with the sync's decryption identities only where
/// `spec.previews.decryption` gives them.
async fn apply(
    sync: &EnvironmentSync,
    settings: &Settings,
    preview: &Preview,
    run: &Run<'_>,
    at: &Fetched,
    tenant: &kube::Client,
) -> Result<(), String> {
    if let Some(problem) = previews::problem(preview) {
        return Err(problem);
    }
    namespace_for(preview, tenant).await?;
    let repository = weaver_repository(sync, at);
    let base = load(settings, repository, at.rev().map(str::to_string), run).await?;
    let environment = Arc::new(preview_environment(base, preview));
    // A preview's branch is anyone's who may push one: it gets the sync's identities only
    // where the spec says so.
    let keys = match preview.decrypts {
        true => run.keys.clone(),
        false => Keys::Given {
            // Said where a decryption fails: "tried: nothing found (<origin>: no keys in it)".
            origin: "a preview (spec.previews), which is given no decryption identities (spec.previews.decryption)"
                .into(),
            identities: Arc::new(SecretString::from(String::new())),
        },
    };
    let preview_run = run.at(at, weaver_repository(sync, at), keys, run.spec);
    let applied = preview_run.apply(std::slice::from_ref(&environment), None).map_err(|e| run.redactor.error(&e))?;
    match applied.into_iter().next() {
        Some((status, _)) if status.result.is_applied() => Ok(()),
        Some((status, _)) => Err(status.message.unwrap_or_else(|| format!("{}", status.result))),
        None => Err("nothing was applied".into()),
    }
}

/// Every release the preview's records list (under its environment name, in its namespace)
/// removed as `installed: false` removes one, whatever its branch or the base environment now
/// hold; then its namespace deleted. False when it has no namespace.
async fn prune(
    sync: &EnvironmentSync,
    preview: &PreviewStatus,
    run: &Run<'_>,
    tenant: &kube::Client,
) -> Result<bool, String> {
    let namespaces: Api<Namespace> = Api::all(tenant.clone());
    let label = previews::owner_label(&sync.namespace().unwrap_or_default(), &sync.name_any(), &preview.name);
    let found = namespaces
        .get_opt(&preview.namespace)
        .await
        .map_err(|e| format!("reading namespace {}: {e}", preview.namespace))?;
    let Some(found) = found else { return Ok(false) };
    if found.labels().get(PREVIEW_LABEL) != Some(&label) {
        return Err(format!(
            "namespace {} is not this preview's (its label {PREVIEW_LABEL} is not `{label}`): it is left alone",
            preview.namespace
        ));
    }
    remove_releases(&preview.environment, &preview.namespace, run).await?;
    match namespaces.delete(&preview.namespace, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
        Err(err) => Err(format!("deleting namespace {}: {err}", preview.namespace)),
    }
}

/// Every release recorded under `environment` in `namespace` removed, found by its records (an
/// environment of no releases, pruned): its hooks run and cluster-wide objects go too, which
/// the namespace's deletion would leave.
async fn remove_releases(environment: &str, namespace: &str, run: &Run<'_>) -> Result<(), String> {
    let empty = Arc::new(Environment::of_manifests(environment, namespace, Vec::new()));
    let pruning = crate::gitops::plan::Settings { prune: true, ..run.spec.clone() };
    let pruning_run = Run { removing: true, ..run.at(run.fetched, run.repository.clone(), run.keys.clone(), &pruning) };
    let removed = pruning_run.apply(&[empty], None).map_err(|e| run.redactor.error(&e))?.into_iter().next();
    match removed {
        Some((status, _)) if !status.result.is_applied() => {
            Err(status.message.unwrap_or_else(|| format!("{}", status.result)))
        }
        _ => Ok(()),
    }
}

/// The preview's namespace, made as the account when missing; refused when it exists and is
/// not this preview's.
async fn namespace_for(preview: &Preview, tenant: &kube::Client) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(tenant.clone());
    let name = &preview.namespace;
    match namespaces.get_opt(name).await {
        // Its own, going (a preview pruned a moment ago, made again): nothing can be written in
        // it until the server has deleted it.
        Ok(Some(found)) if found.labels().get(PREVIEW_LABEL) == Some(&preview.label) => {
            return match found.metadata.deletion_timestamp {
                Some(_) => Err(format!(
                    "namespace {name} is still being deleted (the preview was pruned a moment ago): it is made \
                     again at a reconcile after the server has deleted it"
                )),
                None => Ok(()),
            };
        }
        Ok(Some(_)) => {
            return Err(format!(
                "namespace {name} exists and is not this preview's (it has no label {PREVIEW_LABEL}: {}): nothing \
                 is applied to it; change spec.previews.namespace, or delete the namespace",
                preview.label
            ));
        }
        Ok(None) => {}
        Err(err) => return Err(format!("reading namespace {name}: {err}")),
    }
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.clone());
    namespace.metadata.labels = Some([(PREVIEW_LABEL.to_string(), preview.label.clone())].into());
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(format!(
            "the EnvironmentSync's ServiceAccount may not create namespace {name}: grant it `create` on namespaces \
             (and what its releases need in the previews' namespaces) with a ClusterRole to have previews"
        )),
        Err(err) => Err(format!("creating namespace {name}: {err}")),
    }
}

/// The base environment of `settings`, read from `repository` at `rev`.
async fn load(
    settings: &Settings,
    repository: std::path::PathBuf,
    rev: Option<String>,
    run: &Run<'_>,
) -> Result<Environment, String> {
    let selection = EnvironmentSelection {
        envs: vec![settings.environment.clone()],
        max_file_bytes: run.renders.max_file_bytes(),
        ..EnvironmentSelection::default()
    };
    let loading = tokio::task::spawn_blocking(move || select_environments(&repository, rev.as_deref(), &selection));
    match loading.await {
        Ok(Ok(mut environments)) if environments.len() == 1 => Ok(environments.remove(0)),
        Ok(Ok(_)) => Err(format!("spec.previews.environment `{}` is not one environment", settings.environment)),
        Ok(Err(err)) => Err(format!("spec.previews.environment: {}", run.redactor.error(&err))),
        Err(join) => Err(join.to_string()),
    }
}

/// `base` as the preview applies it: named as the preview's environment, its namespace, every
/// release's and its lock's the preview's (a branch is anyone's who may push one: what it
/// renders goes nowhere else), applied alone (no `needs`), and its values' `preview` the
/// preview's name, branch, commit and namespace, for a weaver chart's templates
/// (`env.values.preview.branch`) and templated values files (`.Values.preview.branch`).
fn preview_environment(mut base: Environment, preview: &Preview) -> Environment {
    let values = serde_json::json!({"name": preview.name, "branch": preview.branch, "commit": preview.commit,
                                    "namespace": preview.namespace});
    base.values.insert("preview".into(), values.clone());
    base.helmfile_values.insert("preview".into(), values);
    base.namespace = preview.namespace.clone();
    base.name = preview.environment.clone();
    base.lock_namespace = preview.namespace.clone();
    base.needs.clear();
    for release in &mut base.releases {
        release.namespace = preview.namespace.clone();
    }
    base
}
