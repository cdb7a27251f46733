//! Promotions and image updates: after a reconcile's apply, `weaver promote`'s action and
//! `weaver images update`'s on their intervals, each pushing its commit to the branch the spec
//! names, signed with the spec's `signingKey`; the registries an EnvironmentSync's image updates
//! ask, kept between reconciles.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kube::ResourceExt;

use super::credentials::{docker_config, fetch_reason, secret, with_secret};
use super::{CONCURRENCY, Run, Shared, verification};
use crate::gitops::api::{
    EnvironmentSync, ImagePinChange, ImageUpdatesStatus, NewestImage, PromotionGate, PromotionStatus, PromotionTarget,
    PushOutcome, PushStatus, Reason,
};
use crate::gitops::plan;
use crate::gitops::status::{ImagesUpdated, Promoted, Pushed};
use weaver_engine::action::Context as ActionContext;
use weaver_engine::action::fleet::EnvironmentSelection;
use weaver_engine::action::images::UpdateOptions;
use weaver_engine::action::promote::{PromoteOptions, Proposal, TargetPromotion};
use weaver_project::Environment;
use weaver_secrets::Redactor;
use weaver_source::charts::Archives;
use weaver_source::charts::http::Machine;
use weaver_source::images::Registries;
use weaver_source::{FetchRequest, GitCache};
use weaver_verify::SigningKey;

impl Shared {
    /// Drops the registries kept for EnvironmentSync `namespace/name` (without
    /// `spec.imageUpdates` now), with their tag lists and connections.
    pub fn forget_registries(&self, namespace: &str, name: &str) {
        self.registries.lock().unwrap_or_else(|e| e.into_inner()).remove(&registries_key(namespace, name));
    }

    /// Keeps only the registries of EnvironmentSyncs that `exists(namespace, name)`: a deleted
    /// one is never reconciled again (it has no finalizer), so its registries go here.
    pub fn retain_registries(&self, exists: impl Fn(&str, &str) -> bool) {
        retain_existing(&mut self.registries.lock().unwrap_or_else(|e| e.into_inner()), exists);
    }
}

/// Keeps the entries whose `namespace/name` key `exists`.
fn retain_existing<V>(all: &mut HashMap<String, V>, exists: impl Fn(&str, &str) -> bool) {
    all.retain(|key, _| key.split_once('/').is_some_and(|(namespace, name)| exists(namespace, name)));
}

fn registries_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The EnvironmentSync's registries, with the logins of its pull Secrets (read as its
/// account); the same as at the last reconcile while the Secrets are.
async fn registries(
    sync: &EnvironmentSync,
    namespace: &str,
    secrets: &[String],
    tenant: &kube::Client,
    shared: &Shared,
) -> Result<Arc<Registries>, (Reason, String)> {
    use sha2::Digest;
    let mut configs = Vec::new();
    let mut fingerprint = sha2::Sha256::new();
    for name in secrets {
        let secret = secret(tenant, namespace, name, "spec.imageUpdates.pullSecrets").await?;
        let what = format!("Secret {namespace}/{name}");
        let Some(config) = docker_config(&secret, &what) else {
            return Err((
                Reason::SecretInvalid,
                format!(
                    "{what} (spec.imageUpdates.pullSecrets) has no `.dockerconfigjson`: create it with kubectl create secret docker-registry"
                ),
            ));
        };
        fingerprint.update(name.as_bytes());
        secret.data.iter().flat_map(|d| d.get(".dockerconfigjson")).for_each(|data| fingerprint.update(&data.0));
        configs.push(config?);
    }
    let fingerprint = fingerprint.finalize().to_vec();
    let key = registries_key(namespace, &sync.name_any());
    let mut all = shared.registries.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((made_with, registries)) = all.get(&key)
        && *made_with == fingerprint
    {
        return Ok(registries.clone());
    }
    let credentials_from = match secrets {
        [] => {
            "spec.imageUpdates.pullSecrets, which names no Secret (the registries were asked anonymously)".to_string()
        }
        names => format!(
            "{} (spec.imageUpdates.pullSecrets)",
            names.iter().map(|n| format!("Secret {namespace}/{n}")).collect::<Vec<_>>().join(", ")
        ),
    };
    let registries = Arc::new(Registries::new(Machine::held(configs), credentials_from));
    all.insert(key, (fingerprint, registries.clone()));
    Ok(registries)
}

/// An image update's status before it runs: what the last one pushed is kept.
fn images_status(sync: &EnvironmentSync, settings: &plan::Promotion, commit: &str) -> ImageUpdatesStatus {
    let previous = sync.status.as_ref().and_then(|s| s.image_updates.as_ref());
    ImageUpdatesStatus { push: push_attempt(settings, commit, previous.map(|p| &p.push)), ..Default::default() }
}

/// A pushing run's attempt now at `commit`: what the last one pushed is kept.
fn push_attempt(settings: &plan::Promotion, commit: &str, previous: Option<&PushStatus>) -> PushStatus {
    PushStatus {
        last_attempt_time: jiff::Timestamp::now().to_string(),
        revision: commit.to_string(),
        branch: settings.branch.clone(),
        last_pushed_commit: previous.and_then(|p| p.last_pushed_commit.clone()),
        last_push_time: previous.and_then(|p| p.last_push_time.clone()),
    }
}

impl Run<'_> {
    /// How a push of this reconcile proposes its pins: planned as the tenant, committed by
    /// `settings.author` on branch `local` of the mirror, from `rev`.
    fn proposal(
        &self,
        settings: &plan::Promotion,
        local: &str,
        rev: &str,
        signing_key: Option<Arc<SigningKey>>,
    ) -> Proposal {
        Proposal {
            repo: self.repository.clone(),
            connect: self.connect(),
            concurrency: CONCURRENCY,
            keys: self.keys.clone(),
            dry_run: false,
            branch: Some(local.to_string()),
            rev: Some(rev.to_string()),
            author: Some(settings.author.clone()),
            signing_key,
            charts: Archives::Pulled(self.pulls.clone()),
            limits: self.renders.limits(self.tenant, self.spec.timeout, self.stopping),
        }
    }

    /// The key a run's commits are signed with (`signingKey` of `spec.FIELD`), read as the
    /// tenant.
    async fn signing_key(
        settings: &plan::Promotion,
        field: &str,
        namespace: &str,
        tenant: &kube::Client,
    ) -> Result<Option<Arc<SigningKey>>, (Reason, String)> {
        match &settings.signing_key {
            None => Ok(None),
            Some(name) => {
                let field = format!("spec.{field}.signingKey.secretRef");
                verification::signing_key(tenant, namespace, name, &field).await.map(Some)
            }
        }
    }

    /// Auto-promotion: `weaver promote`'s action over the selected environments that have a
    /// `promotion:`, at the fetched commit in its mirror; its commit (on a local branch of the
    /// mirror, removed after, signed with `signingKey`) pushed to `push_to`'s branch.
    #[allow(clippy::too_many_arguments)]
    async fn promote(
        &self,
        environments: &[Arc<Environment>],
        settings: &plan::Promotion,
        cache: &Arc<GitCache>,
        push_to: &FetchRequest,
        sync: &EnvironmentSync,
        namespace: &str,
        tenant: &kube::Client,
    ) -> Promoted {
        let previous = sync.status.as_ref().and_then(|s| s.promotion.as_ref());
        let commit = self.fetched.commit.clone();
        let mut status =
            PromotionStatus { push: push_attempt(settings, &commit, previous.map(|p| &p.push)), targets: Vec::new() };
        let targets: Vec<String> =
            environments.iter().filter(|e| e.promotion.is_some()).map(|e| e.name.clone()).collect();
        let result = Promoted::unpushed;
        if targets.is_empty() {
            let message = "no selected environment has a `promotion:` saying what it takes from which".to_string();
            return result(false, PushOutcome::NoPromotionTargets, message, status);
        }
        let signing_key = match Self::signing_key(settings, "promotion", namespace, tenant).await {
            Ok(key) => key,
            Err((reason, message)) => return Promoted::unpushed(false, reason, message, status),
        };
        // A branch of this reconcile's own: mirrors are shared, and a promotion's branch is new.
        let local = format!(
            "weaver/auto-promote/{}/{}-{}",
            sync.uid().unwrap_or_else(|| sync.name_any()),
            plan::short(&commit),
            jiff::Timestamp::now().as_nanosecond()
        );
        let options = PromoteOptions {
            targets: EnvironmentSelection { envs: targets, ..EnvironmentSelection::default() },
            record_key: self.record_key.clone(),
            proposal: self.proposal(settings, &local, &commit, signing_key),
        };
        let on = self.on();
        let cx = ActionContext::new(self.redactor, &on);
        // Its renders (the source's and each target's) take a turn as the applies' do: the
        // tenant's repository may loop as well here.
        let targets = options.targets.envs.join(", ");
        let turn = match self.renders.turn(self.tenant, &targets, &self.fetched.commit, &options.proposal.limits).await
        {
            Ok(turn) => turn,
            Err(err) => return result(false, PushOutcome::PromotionFailed, self.redactor.error(&err), status),
        };
        let promoted = weaver_engine::action::promote::promote(&options, cx).await;
        // Held while it renders, not while it pushes.
        turn.finished(&promoted);
        let promotions = match promoted {
            Ok(promotions) => promotions,
            Err(err) => return result(false, PushOutcome::PromotionFailed, self.redactor.error(&err), status),
        };
        status.targets = promotions.targets.iter().map(|t| target_status(t, self.redactor)).collect();
        let failed: Vec<String> = promotions
            .targets
            .iter()
            .flat_map(|t| t.refusals())
            .map(|r| self.redactor.redact(&r).into_owned())
            .collect();
        if !failed.is_empty() {
            return result(false, PushOutcome::GatesFailed, format!("nothing pushed: {}", failed.join("; ")), status);
        }
        let Some((_, promoted)) = promotions.commit else {
            let message = format!("every target has what its source applied at {}", plan::short(&commit));
            return result(true, PushOutcome::UpToDate, message, status);
        };
        let changes = status.changes();
        let push = Push { commit: promoted, locals: vec![local], settings, cache, push_to, sync, namespace };
        self.push(push, status, (PushOutcome::Promoted, "this promotion"), &changes).await
    }

    /// Pushes a run's commit to `push_to`'s branch, its local branches removed after: the
    /// outcome says `done.0` and `changes` on a push, `UpToDate` when the branch already has
    /// `done.1`, the push's failure (naming the source's Secret) otherwise.
    async fn push<S: AsMut<PushStatus>>(
        &self,
        push: Push<'_>,
        mut status: S,
        done: (PushOutcome, &str),
        changes: &[String],
    ) -> Pushed<S> {
        let Push { commit, locals, settings, cache, push_to, sync, namespace } = push;
        let (cache, fetched, request, force) = (cache.clone(), self.fetched.clone(), push_to.clone(), settings.force);
        let pushing = commit.clone();
        let pushed = tokio::task::spawn_blocking(move || cache.push(&fetched, &request, &pushing, force)).await;
        self.delete_branches(&locals);
        let (reason, already) = done;
        let changes = changes.join("; ");
        match pushed {
            Ok(Ok(true)) => {
                status.as_mut().record(&commit);
                let message = format!("pushed {} to branch {} ({changes})", plan::short(&commit), settings.branch);
                Pushed { passed: true, reason: reason.into(), message, status, pushed: Some(commit) }
            }
            Ok(Ok(false)) => {
                let message = format!("branch {} has {already} already ({changes})", settings.branch);
                Pushed::unpushed(true, PushOutcome::UpToDate, message, status)
            }
            Ok(Err(err)) => {
                Pushed::unpushed(false, fetch_reason(err.failure), with_secret(&err, sync, namespace), status)
            }
            Err(join) => {
                Pushed::unpushed(false, PushOutcome::GitPushFailed, format!("the push stopped: {join}"), status)
            }
        }
    }
}

/// A run's commit and where it goes, for [`Run::push`].
struct Push<'a> {
    commit: String,
    /// The mirror's local branches the run made, removed after the push.
    locals: Vec<String>,
    settings: &'a plan::Promotion,
    cache: &'a Arc<GitCache>,
    push_to: &'a FetchRequest,
    sync: &'a EnvironmentSync,
    namespace: &'a str,
}

impl Run<'_> {
    /// The auto-promotion and the image update that are due, run in turn after the reconcile's
    /// apply (or while its plan awaits an approval): never while the process stops, for a push
    /// is not interrupted half-way.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn push_due(
        &self,
        environments: &[Arc<Environment>],
        push_to: &Option<FetchRequest>,
        images_push_to: &Option<FetchRequest>,
        sync: &EnvironmentSync,
        namespace: &str,
        tenant: &kube::Client,
        shared: &Shared,
    ) -> (Option<Box<Promoted>>, Option<Box<ImagesUpdated>>) {
        let spec = self.spec;
        let now = jiff::Timestamp::now();
        let stopping = || shared.stopping.load(Ordering::SeqCst);
        let promotion = match (&spec.promotion, push_to) {
            (Some(promotion), Some(push_to)) if plan::promotion_due(sync, promotion.interval, now) && !stopping() => {
                let promoted = self.promote(environments, promotion, &shared.cache, push_to, sync, namespace, tenant);
                Some(Box::new(promoted.await))
            }
            _ => None,
        };
        let images = match (spec.image_updates.as_deref(), images_push_to) {
            (Some(plan::ImageUpdates { pushing: settings, pull_secrets: secrets }), Some(push_to))
                if plan::image_update_due(sync, settings.interval, now) && !stopping() =>
            {
                let updated = match registries(sync, namespace, secrets, tenant, shared).await {
                    Ok(registries) => {
                        let cache = &shared.cache;
                        self.update_images(environments, settings, registries, cache, push_to, sync, namespace, tenant)
                            .await
                    }
                    Err((reason, message)) => {
                        let status = images_status(sync, settings, &self.fetched.commit);
                        ImagesUpdated::unpushed(false, reason, message, status)
                    }
                };
                Some(Box::new(updated))
            }
            (None, _) => {
                shared.forget_registries(namespace, &sync.name_any());
                None
            }
            _ => None,
        };
        (promotion, images)
    }

    /// The selected environments' image updates, as `weaver images update` writes them, each
    /// on the commit of the one before, and the last commit pushed to `push_to`'s branch.
    #[allow(clippy::too_many_arguments)]
    async fn update_images(
        &self,
        environments: &[Arc<Environment>],
        settings: &plan::Promotion,
        registries: Arc<Registries>,
        cache: &Arc<GitCache>,
        push_to: &FetchRequest,
        sync: &EnvironmentSync,
        namespace: &str,
        tenant: &kube::Client,
    ) -> ImagesUpdated {
        let mut status = images_status(sync, settings, &self.fetched.commit);
        let result = ImagesUpdated::unpushed;
        let subscribed: Vec<&str> =
            environments.iter().filter(|e| e.image_updates.is_some()).map(|e| e.name.as_str()).collect();
        if subscribed.is_empty() {
            let message = "no selected environment has `imageUpdates:` naming the images it takes".to_string();
            return result(false, PushOutcome::NoImageUpdates, message, status);
        }
        let signing_key = match Self::signing_key(settings, "imageUpdates", namespace, tenant).await {
            Ok(key) => key,
            Err((reason, message)) => return ImagesUpdated::unpushed(false, reason, message, status),
        };
        let mut rev = self.fetched.commit.clone();
        let mut locals = Vec::new();
        let on = self.on();
        for environment in subscribed {
            let local = format!(
                "weaver/image-updates/{}/{environment}-{}",
                sync.uid().unwrap_or_else(|| sync.name_any()),
                jiff::Timestamp::now().as_nanosecond()
            );
            let proposal = self.proposal(settings, &local, &rev, signing_key.clone());
            let options = UpdateOptions { environment: environment.to_string(), proposal };
            let cx = ActionContext::new(self.redactor, &on);
            let checked = match weaver_engine::action::images::check_update(&options, Arc::clone(&registries)).await {
                Ok(checked) => checked,
                Err(err) => {
                    self.delete_branches(&locals);
                    return result(false, PushOutcome::ImageUpdateFailed, self.redactor.error(&err), status);
                }
            };
            // Its render takes a turn as an apply's does; the registries were asked before it.
            let revision = &self.fetched.commit;
            let turn = match self.renders.turn(self.tenant, environment, revision, &options.proposal.limits).await {
                Ok(turn) => turn,
                Err(err) => {
                    self.delete_branches(&locals);
                    return result(false, PushOutcome::ImageUpdateFailed, self.redactor.error(&err), status);
                }
            };
            let proposed = weaver_engine::action::images::propose(&options, checked, cx).await;
            turn.finished(&proposed);
            let update = match proposed {
                Ok(update) => update,
                Err(err) => {
                    self.delete_branches(&locals);
                    return result(false, PushOutcome::ImageUpdateFailed, self.redactor.error(&err), status);
                }
            };
            status.requests += update.requests;
            for image in &update.check.images {
                let passed_over: Vec<String> = image.passed_over.iter().map(ToString::to_string).collect();
                status.images.push(NewestImage {
                    environment: environment.to_string(),
                    image: image.image.clone(),
                    newest: image.newest.clone(),
                    signed_by: image.signed_by.clone(),
                    passed_over: (!passed_over.is_empty()).then(|| passed_over.join("; ")),
                    held_back: image.held_back.clone(),
                });
            }
            for change in &update.changes {
                status.changes.push(ImagePinChange {
                    environment: environment.to_string(),
                    release: change.release.clone(),
                    image: change.name.clone(),
                    from: change.from.as_ref().and_then(|v| v.as_str()).map(str::to_string),
                    to: change.to.as_str().unwrap_or_default().to_string(),
                });
            }
            if let Some((_, commit)) = update.commit {
                rev = commit;
                locals.push(local);
            }
        }
        if locals.is_empty() {
            status.changes.clear();
            let message =
                format!("every image is pinned at the newest tag its policy allows ({} requests)", status.requests);
            return result(true, PushOutcome::UpToDate, message, status);
        }
        let push = Push { commit: rev, locals, settings, cache, push_to, sync, namespace };
        let changes: Vec<String> = status.changes.iter().map(ToString::to_string).collect();
        self.push(push, status, (PushOutcome::ImagesUpdated, "these pins"), &changes).await
    }

    /// Removes a run's local branches from the shared mirror.
    fn delete_branches(&self, locals: &[String]) {
        for local in locals {
            if let Err(err) =
                weaver_git::GitRepo::open(&self.fetched.repository).and_then(|git| git.delete_branch(local))
            {
                tracing::warn!("cannot remove the local branch {local}: {}", self.redactor.error(&err));
            }
        }
    }
}

/// A target's gates and changes, for the status.
fn target_status(target: &TargetPromotion, redactor: &Redactor) -> PromotionTarget {
    let text = |value: &Option<serde_json::Value>| value.as_ref().map_or("unset".to_string(), |v| v.to_string());
    PromotionTarget {
        environment: target.environment.clone(),
        from: target.from.clone(),
        passed: target.passed(),
        gates: target
            .gates
            .iter()
            .map(|gate| PromotionGate {
                gate: gate.gate.name().into(),
                passed: gate.passed,
                expression: gate.expression.clone(),
                evidence: gate.evidence.iter().map(|e| redactor.redact(e).into_owned()).collect(),
            })
            .collect(),
        changes: target
            .changes
            .iter()
            .map(|c| {
                let name = if c.name.is_empty() { String::new() } else { format!(" {}", c.name) };
                let line = format!("{} {}{name}: {} -> {}", c.release, c.pin, text(&c.from), c.to);
                redactor.redact(&line).into_owned()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use serde_json::json;

    use super::*;
    use crate::gitops::api::PushReason;
    use crate::gitops::testing::{AUTHOR, Fixture, NAMESPACE, condition, promoting};

    #[test]
    fn push_reasons_are_written_as_the_strings_they_were_and_a_newer_one_is_kept() {
        for (outcome, written) in [
            (PushOutcome::Promoted, "Promoted"),
            (PushOutcome::ImagesUpdated, "ImagesUpdated"),
            (PushOutcome::UpToDate, "UpToDate"),
            (PushOutcome::GatesFailed, "GatesFailed"),
            (PushOutcome::PromotionFailed, "PromotionFailed"),
            (PushOutcome::NoPromotionTargets, "NoPromotionTargets"),
            (PushOutcome::ImageUpdateFailed, "ImageUpdateFailed"),
            (PushOutcome::NoImageUpdates, "NoImageUpdates"),
            (PushOutcome::GitPushFailed, "GitPushFailed"),
            (PushOutcome::Other("PushedElsewhere".into()), "PushedElsewhere"),
        ] {
            assert_eq!(serde_json::to_value(&outcome).unwrap(), written);
            assert_eq!(serde_json::from_value::<PushOutcome>(written.into()).unwrap(), outcome);
            assert_eq!(PushReason::from(outcome).as_str(), written);
        }
        // A push's or a pull Secret's failure is named as the Ready condition names it.
        for reason in [Reason::GitPushRejected, Reason::SecretNotFound] {
            assert_eq!(PushReason::from(reason.clone()).as_str(), reason.as_str());
        }
    }

    #[test]
    fn the_registries_of_deleted_syncs_are_dropped_and_the_others_kept() {
        let mut all: HashMap<String, ()> =
            [registries_key("team", "shop"), registries_key("team", "gone"), registries_key("other", "shop")]
                .into_iter()
                .map(|key| (key, ()))
                .collect();
        retain_existing(&mut all, |namespace, name| (name == "shop" && namespace == "team") || namespace == "other");
        let mut kept: Vec<&str> = all.keys().map(String::as_str).collect();
        kept.sort();
        assert_eq!(kept, ["other/shop", "team/shop"]);
    }

    /// The pushes the git server took since the last look.
    fn pushes(fixture: &Fixture) -> usize {
        fixture.source.requests().iter().filter(|r| r.starts_with("POST /shop/git-receive-pack")).count()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_promotion_pushes_nothing_while_a_gate_fails_then_pushes_its_pins_and_records_the_commit() {
        let Some(fixture) = Fixture::start().await else { return };
        fixture.namespace("staging").await;
        promoting(&fixture, "1h");
        let first = fixture.source.commit("staging and dev");
        fixture.create_sync("staging", json!({"environments": ["staging"]})).await;
        fixture.reconcile("staging").await;
        let author = json!({"name": AUTHOR.0, "email": AUTHOR.1});
        // Due at every reconcile.
        fixture.create_sync("shop", json!({"promotion": {"interval": "1ms", "author": author}})).await;

        // Staging was applied less than the hour dev's soakTime asks: the gate says so.
        let held = fixture.reconcile("shop").await;
        let (status, reason, message) = condition(&held, "Promoted").expect("a Promoted condition");
        assert_eq!((status.as_str(), reason.as_str()), ("False", PushOutcome::GatesFailed.as_str()));
        assert!(message.starts_with("nothing pushed: ") && message.contains("gate `soak` failed"), "{message}");
        let promotion = held.status.as_ref().and_then(|s| s.promotion.clone()).expect("the promotion's status");
        assert_eq!(promotion.push.revision, first);
        let target = &promotion.targets[0];
        assert_eq!((target.environment.as_str(), target.from.as_str(), target.passed), ("dev", "staging", false));
        let soak = target.gates.iter().find(|g| g.gate == "soak").expect("the soak gate");
        assert!(!soak.passed, "{soak:?}");
        assert_eq!(target.changes, ["app values greeting: \"v1\" -> \"v2\""]);
        assert_eq!((pushes(&fixture), fixture.source.branch("main")), (0, Some(first.clone())));
        // Dev itself was applied as the commit has it.
        assert_eq!(condition(&held, "Ready").map(|c| c.1), Some(Reason::ReconciliationSucceeded.as_str().into()));
        let greeting =
            |map: Option<k8s_openapi::api::core::v1::ConfigMap>| map.and_then(|m| m.data?.get("greeting").cloned());
        assert_eq!(greeting(fixture.config_map(NAMESPACE, "app").await).as_deref(), Some("v1"));

        // A soak staging has had: the pins are committed by the author and pushed to main.
        promoting(&fixture, "1ms");
        let second = fixture.source.commit("soak a millisecond");
        fixture.request_reconcile("shop").await;
        let promoted = fixture.reconcile("shop").await;
        let (status, reason, message) = condition(&promoted, "Promoted").expect("a Promoted condition");
        assert_eq!((status.as_str(), reason.as_str()), ("True", PushOutcome::Promoted.as_str()), "{message}");
        let pushed = fixture.source.branch("main").expect("main");
        assert_eq!(
            message,
            format!("pushed {} to branch main (dev: app values greeting: \"v1\" -> \"v2\")", &pushed[..12])
        );
        let promotion = promoted.status.as_ref().and_then(|s| s.promotion.clone()).expect("the promotion's status");
        assert_eq!(promotion.push.last_pushed_commit.as_deref(), Some(pushed.as_str()));
        assert_eq!(pushes(&fixture), 1);
        let (parent, file, author) = fixture.source.commit_of(&pushed, "promotions/dev.yaml");
        assert_eq!((parent.as_str(), author), (second.as_str(), (AUTHOR.0.to_string(), AUTHOR.1.to_string())));
        assert!(file.contains("from: staging") && file.contains("greeting: v2"), "{file}");
        let events = fixture.events("shop").await;
        assert!(events.contains(&format!("Normal Promoted: {message}")), "{events:#?}");

        // The next reconcile applies the pushed pins, and finds nothing new to push.
        fixture.request_reconcile("shop").await;
        let applied = fixture.reconcile("shop").await;
        assert_eq!(applied.status.as_ref().and_then(|s| s.last_applied_revision.as_deref()), Some(pushed.as_str()));
        assert_eq!(greeting(fixture.config_map(NAMESPACE, "app").await).as_deref(), Some("v2"));
        assert_eq!(condition(&applied, "Promoted").map(|c| (c.0, c.1)), Some(("True".into(), "UpToDate".into())));
        let promotion = applied.status.and_then(|s| s.promotion).expect("the promotion's status");
        assert_eq!(promotion.push.last_pushed_commit.as_deref(), Some(pushed.as_str()), "the last push is kept");
        assert_eq!(pushes(&fixture), 0);
    }

    /// The pull Secrets are read before any registry is asked: a missing one stops the update;
    /// once it exists the run goes on, here to no subscription. (An update that asks a registry
    /// and pushes is the root suite's: `tests/images.rs`.)
    #[tokio::test(flavor = "multi_thread")]
    async fn an_image_update_names_a_missing_pull_secret_and_once_it_exists_what_it_lacks() {
        let Some(fixture) = Fixture::start().await else { return };
        let commit = fixture.source.commit("first");
        let author = json!({"name": AUTHOR.0, "email": AUTHOR.1});
        let updates = json!({"interval": "1ms", "author": author, "pullSecrets": [{"name": "registry"}]});
        fixture.create_sync("shop", json!({"imageUpdates": updates})).await;

        let missing = fixture.reconcile("shop").await;
        let message = "Secret app/registry (spec.imageUpdates.pullSecrets) does not exist; create it";
        assert_eq!(
            condition(&missing, "ImagesUpdated"),
            Some(("False".into(), Reason::SecretNotFound.as_str().into(), message.into()))
        );
        let updated = missing.status.as_ref().and_then(|s| s.image_updates.clone()).expect("the update's status");
        assert_eq!((updated.push.revision.as_str(), updated.push.branch.as_str()), (commit.as_str(), "main"));
        // The apply before it went on: Ready is the apply's.
        assert_eq!(condition(&missing, "Ready").map(|c| c.0), Some("True".into()));
        assert!(fixture.events("shop").await.contains(&format!("Warning SecretNotFound: {message}")));

        let config = json!({".dockerconfigjson": "{\"auths\": {}}"});
        let secret = json!({"metadata": {"name": "registry", "namespace": NAMESPACE},
                            "type": "kubernetes.io/dockerconfigjson", "stringData": config});
        fixture.create::<Secret>(secret).await;
        let unsubscribed = fixture.reconcile("shop").await;
        let message = "no selected environment has `imageUpdates:` naming the images it takes";
        assert_eq!(
            condition(&unsubscribed, "ImagesUpdated"),
            Some(("False".into(), PushOutcome::NoImageUpdates.as_str().into(), message.into()))
        );
        assert_eq!(pushes(&fixture), 0);
    }
}
