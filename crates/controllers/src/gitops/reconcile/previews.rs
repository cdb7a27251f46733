//! Preview environments (`spec.previews`), after the EnvironmentSync's own environments: the
//! remote's branches listed (or the forge's pull requests, `super::forge`), each matching one
//! fetched and its preview (the base environment in
//! a namespace of its own, under an environment name of its own) applied with the same `Run`
//! as the environments, as the same account; a preview whose branch went or expired removed as
//! `installed: false` removes a release, then its namespace deleted. What to have is decided by
//! `gitops::previews`.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use secrecy::SecretString;

use super::forge;
use super::{Run, Shared, weaver_repository};
use crate::gitops::api::{EnvironmentSync, PreviewState, PreviewStatus};
use crate::gitops::plan::Work;
use crate::gitops::previews::{self, Branch, Preview, Settings};
use crate::gitops::status::Previewed;
use weaver_engine::action::Keys;
use weaver_engine::action::fleet::{EnvironmentSelection, select_environments};
use weaver_project::Environment;
use weaver_source::{FetchRequest, Fetched, GitRef};

/// The label of a preview's namespace: `<sync namespace>.<sync name>.<preview name>`. Only a
/// namespace carrying this preview's is written to or deleted.
pub const PREVIEW_LABEL: &str = "weaver.example.com/preview";

/// Every preview as `settings` wants it at this reconcile: the branches `request`'s remote has,
/// each matching one fetched; `work` applies every preview again (a push to the sync's branch,
/// a spec changed, a reconcile asked for), else only those not Ready at their branch's head.
/// `run` is the sync's, at its own commit: previews are pruned with its environment file.
pub(super) async fn reconcile(
    sync: &EnvironmentSync,
    settings: &Settings,
    run: &Run<'_>,
    (request, tenant, shared): (&FetchRequest, &kube::Client, &Shared),
    work: Work,
) -> Previewed {
    let namespace = sync.namespace().unwrap_or_default();
    let previous: Vec<PreviewStatus> = sync.status.as_ref().map(|s| s.previews.clone()).unwrap_or_default();
    let mut forged = match &settings.forge {
        Some(forge) => Some(forge::connect(sync, forge, tenant, run.redactor).await),
        None => None,
    };
    let listing = match (&settings.labels, &forged) {
        (Some(labels), Some(Ok(forged))) => forged.candidates(labels, run.redactor).await,
        (Some(_), Some(Err(why))) => Err(why.clone()),
        _ => branches(request, shared, run).await,
    };
    let listed = match listing {
        Ok(listed) => listed,
        // Nothing is pruned on a failed listing: the previews stay as they were, and say why.
        Err(why) => return unlisted(previous, settings, &why),
    };
    let matching: Vec<&forge::Candidate> = {
        let names = settings.matching(listed.iter().map(|c| c.branch.as_str()));
        listed.iter().filter(|c| names.contains(&c.branch.as_str())).collect()
    };
    // Each matching branch fetched: its commit's time chooses which expire and which wait (one
    // that could not be fetched counts as new).
    let mut fetched: Vec<(Branch, Result<Fetched, String>)> = Vec::new();
    for candidate in matching {
        let asked = FetchRequest { reference: candidate.reference.clone(), ..request.clone() };
        let cache = shared.cache.clone();
        let got = match tokio::task::spawn_blocking(move || cache.fetch(&asked)).await {
            // The forge's ref lags its API at times: the preview waits for them to agree.
            Ok(Ok(got)) if candidate.pull_request.is_some() && got.commit != candidate.commit => Err(format!(
                "the forge's head of pull request #{} is {}, and its {} is at {}: waiting for them to agree, at the \
                 next reconcile",
                candidate.pull_request.unwrap_or_default(),
                crate::gitops::plan::short(&candidate.commit),
                candidate.reference,
                crate::gitops::plan::short(&got.commit)
            )),
            Ok(Ok(got)) => Ok(got),
            Ok(Err(err)) => Err(format!("the branch could not be fetched: {}", run.redactor.redact(&err.to_string()))),
            Err(join) => Err(format!("the fetch of the branch stopped: {join}")),
        };
        let (commit, time) = match &got {
            Ok(got) => (got.commit.clone(), got.commit_time().unwrap_or_else(|| shared.clock.now())),
            Err(_) => (candidate.commit.clone(), shared.clock.now()),
        };
        let (pull_request, fork) = (candidate.pull_request, candidate.fork);
        fetched.push((Branch { name: candidate.branch.clone(), commit, time, pull_request, fork }, got));
    }
    let made: BTreeSet<String> =
        previous.iter().filter(|p| p.state != PreviewState::Waiting).map(|p| p.name.clone()).collect();
    let branches: Vec<Branch> = fetched.iter().map(|(branch, _)| branch.clone()).collect();
    let wanted = settings.previews(&branches, &made, shared.clock.now(), (&namespace, &sync.name_any()));
    let mut done = Previewed::default();
    for preview in &wanted {
        let before = previous.iter().find(|p| p.name == preview.name);
        let status = |state, message: Option<String>| PreviewStatus {
            name: preview.name.clone(),
            branch: preview.branch.clone(),
            pull_request: preview.pull_request,
            commit: preview.commit.clone(),
            namespace: preview.namespace.clone(),
            state,
            message,
            commit_status: None,
        };
        if let Some(why) = &preview.waiting {
            done.previews.push(status(PreviewState::Waiting, Some(why.clone())));
            continue;
        }
        let of_preview =
            |(branch, _): &&(Branch, _)| (&branch.name, branch.pull_request) == (&preview.branch, preview.pull_request);
        let at = match &fetched.iter().find(of_preview).expect("listed").1 {
            Ok(at) => at,
            // Kept as it was, saying why.
            Err(why) => {
                let kept = before.map(|b| PreviewStatus { message: Some(why.clone()), ..b.clone() });
                done.previews.push(kept.unwrap_or_else(|| status(PreviewState::Failed, Some(why.clone()))));
                continue;
            }
        };
        let current = before.is_some_and(|b| b.state == PreviewState::Ready && b.commit == preview.commit);
        if current && work != Work::Apply {
            done.previews.push(status(PreviewState::Ready, None));
            continue;
        }
        if let Some(Ok(forged)) = &mut forged {
            forged.starting(&preview.name, &preview.commit, before, run.redactor).await;
        }
        let applied = apply(sync, settings, preview, run, at, tenant).await;
        match applied {
            Ok(()) => {
                if before.is_none_or(|b| b.state == PreviewState::Waiting) {
                    done.created.push(format!(
                        "preview {} of branch {} applied at {} in namespace {}",
                        preview.name,
                        preview.branch,
                        crate::gitops::plan::short(&preview.commit),
                        preview.namespace
                    ));
                }
                done.previews.push(status(PreviewState::Ready, None));
            }
            Err(message) => done.previews.push(status(PreviewState::Failed, Some(message))),
        }
    }
    let kept: BTreeSet<&str> = done.previews.iter().map(|p| p.name.as_str()).collect();
    let active: BTreeSet<&str> =
        done.previews.iter().filter(|p| p.state != PreviewState::Waiting).map(|p| p.name.as_str()).collect();
    // Made before, and no longer wanted (its branch gone or expired, or now over the maximum).
    let gone: Vec<PreviewStatus> = previous
        .iter()
        .filter(|p| p.state != PreviewState::Waiting && !active.contains(p.name.as_str()))
        .cloned()
        .collect();
    let mut unpruned = Vec::new();
    for preview in gone {
        let why = match kept.contains(preview.name.as_str()) {
            true => "over spec.previews.max".to_string(),
            false => match preview.pull_request {
                Some(number) => format!(
                    "its pull request #{number} is closed, merged or no longer carries spec.previews.pullRequests.labels"
                ),
                None => format!(
                    "its branch {} is gone or its last commit expired (spec.previews.expireAfter)",
                    preview.branch
                ),
            },
        };
        match prune(sync, settings, &preview, run, tenant).await {
            // Never made (it failed before its namespace was): nothing to say.
            Ok(false) => {}
            Ok(true) => done.pruned.push(format!(
                "preview {} pruned ({why}): its objects, records and namespace {} deleted",
                preview.name, preview.namespace
            )),
            // Tried again at the next reconcile: the status keeps it until it is gone.
            Err(message) if !kept.contains(preview.name.as_str()) => unpruned.push(PreviewStatus {
                state: PreviewState::Failed,
                message: Some(format!("{why}, but it could not be pruned: {message}")),
                ..preview
            }),
            Err(message) => tracing::warn!(preview = preview.name, "not pruned: {message}"),
        }
    }
    done.previews.extend(unpruned);
    done.previews.sort_by(|a, b| a.name.cmp(&b.name));
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

/// The remote's branches, from its refs advertisement, each fetched by its name.
async fn branches(request: &FetchRequest, shared: &Shared, run: &Run<'_>) -> Result<Vec<forge::Candidate>, String> {
    let listing = {
        let (cache, request) = (shared.cache.clone(), request.clone());
        tokio::task::spawn_blocking(move || cache.branches(&request)).await
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

/// The previews as they were, each saying why this reconcile did not look at them.
fn unlisted(previous: Vec<PreviewStatus>, settings: &Settings, why: &str) -> Previewed {
    let what = if settings.labels.is_some() { "pull requests" } else { "branches" };
    let previews = previous
        .into_iter()
        .map(|p| PreviewStatus { message: Some(format!("the {what} could not be listed: {why}")), ..p })
        .collect();
    Previewed { previews, ..Previewed::default() }
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

/// Every object the preview's release records list deleted, as `installed: false` removes a
/// release (and the releases only its branch had, as `prune` removes them), then its namespace;
/// false when it has no namespace.
async fn prune(
    sync: &EnvironmentSync,
    settings: &Settings,
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
    let base = load(settings, run.repository.clone(), run.fetched.rev().map(str::to_string), run).await?;
    let planned = Preview {
        name: preview.name.clone(),
        branch: preview.branch.clone(),
        pull_request: preview.pull_request,
        commit: preview.commit.clone(),
        namespace: preview.namespace.clone(),
        environment: settings.environment_of(&preview.name),
        label,
        waiting: None,
        decrypts: false,
    };
    let mut environment = preview_environment(base, &planned);
    for release in &mut environment.releases {
        release.installed = false;
    }
    // Its releases the sync's environment file no longer has are found by their records.
    let pruning = crate::gitops::plan::Settings { prune: true, ..run.spec.clone() };
    let pruning_run = run.at(run.fetched, run.repository.clone(), run.keys.clone(), &pruning);
    let removed =
        pruning_run.apply(&[Arc::new(environment)], None).map_err(|e| run.redactor.error(&e))?.into_iter().next();
    if let Some((status, _)) = removed.filter(|(status, _)| !status.result.is_applied()) {
        return Err(status.message.unwrap_or_else(|| format!("{}", status.result)));
    }
    match namespaces.delete(&preview.namespace, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
        Err(err) => Err(format!("deleting namespace {}: {err}", preview.namespace)),
    }
}

/// The preview's namespace, made as the account when missing; refused when it exists and is
/// not this preview's.
async fn namespace_for(preview: &Preview, tenant: &kube::Client) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(tenant.clone());
    let name = &preview.namespace;
    match namespaces.get_opt(name).await {
        Ok(Some(found)) if found.labels().get(PREVIEW_LABEL) == Some(&preview.label) => return Ok(()),
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
/// (`env.values.preview.branch`).
fn preview_environment(mut base: Environment, preview: &Preview) -> Environment {
    let values = serde_json::json!({"name": preview.name, "branch": preview.branch, "commit": preview.commit,
                                    "namespace": preview.namespace});
    base.values.insert("preview".into(), values);
    base.namespace = preview.namespace.clone();
    base.name = preview.environment.clone();
    base.lock_namespace = preview.namespace.clone();
    base.needs.clear();
    for release in &mut base.releases {
        release.namespace = preview.namespace.clone();
    }
    base
}
