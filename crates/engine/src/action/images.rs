//! Image updates: per environment with `imageUpdates:`, the tag each subscription's policy
//! takes of its repository's tags now, against what the environment pins (`weaver images
//! check`); and those tags written as `tag@digest` pins to the environment's promotions file, in
//! a commit on a new branch as `weaver promote` writes its pins, with the plan of the change
//! (`weaver images update`). One tag list is read per repository however many environments and
//! subscriptions name it; what the registries answer is kept by [`Registries`], so a controller
//! that checks at an interval asks again only what changed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::Context;
use super::fleet::{EnvironmentSelection, select_environments};
use super::plan::Planned;
use super::promote::{PinChange, Proposal};
use weaver_cluster::SharedServers;
use weaver_core::error::{Error, Result};
use weaver_project::Environment;
use weaver_project::image_updates::Policy;
use weaver_project::image_updates::Skipped;
use weaver_project::promotion::{Promoted, promoted_path};
use weaver_source::images::{Check, ImageRepository, Registries, Tags};

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub repo: PathBuf,
    /// The environments (`--env`, `--env-selector`); every one with `imageUpdates:` when empty.
    pub environments: EnvironmentSelection,
    /// The commit read: HEAD's when None.
    pub rev: Option<String>,
    /// Repositories asked at once.
    pub concurrency: usize,
}

/// What `weaver images check` found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    pub environments: Vec<EnvironmentCheck>,
    /// Requests sent to registries.
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentCheck {
    pub environment: String,
    /// The promotions file the pins are written to.
    pub file: String,
    pub images: Vec<ImageCheck>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageCheck {
    pub image: String,
    pub policy: String,
    /// Each release's pin of the image now (`tag@digest`); null where none is written.
    pub current: BTreeMap<String, Option<String>>,
    /// The tag the policy takes, `tag@digest`; null when no tag is allowed.
    pub newest: Option<String>,
    /// Whether a release's pin differs from `newest`.
    pub new: bool,
    /// How many tags the repository has.
    pub tags: usize,
    /// Allowed, but not the newest.
    pub older: usize,
    /// Tags not allowed, by reason, with the first few of each.
    pub skipped: Vec<SkippedTags>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTags {
    pub reason: &'static str,
    pub count: usize,
    pub examples: Vec<String>,
}

impl From<&Skipped> for SkippedTags {
    fn from(skipped: &Skipped) -> SkippedTags {
        SkippedTags { reason: skipped.reason, count: skipped.count, examples: skipped.examples.clone() }
    }
}

impl Checks {
    pub fn has_new(&self) -> bool {
        self.environments.iter().any(|e| e.images.iter().any(|i| i.new))
    }
}

/// Checks each selected environment's subscriptions against its registries.
pub fn check(options: &CheckOptions, registries: &Registries) -> Result<Checks> {
    check_loaded(&subscribed(options)?, registries, options.concurrency)
}

/// [`check`] of environments already loaded.
fn check_loaded(environments: &[Environment], registries: &Registries, concurrency: usize) -> Result<Checks> {
    let before = registries.requests();
    let check = registries.check();
    let mut checks = Vec::new();
    let tags = tag_lists(environments, registries, &check, concurrency)?;
    for environment in environments {
        checks.push(check_environment(environment, registries, &check, &tags)?);
    }
    Ok(Checks { environments: checks, requests: registries.requests() - before })
}

/// The selected environments that have `imageUpdates:`; one named by `--env` without them is
/// an error, one picked by a glob or selector is passed over.
fn subscribed(options: &CheckOptions) -> Result<Vec<Environment>> {
    let selected = select_environments(&options.repo, options.rev.as_deref(), &options.environments)?;
    if let Some(named) =
        selected.iter().find(|e| e.image_updates.is_none() && options.environments.envs.contains(&e.name))
    {
        let file = named.files.first().map(weaver_core::error::Location::file);
        let message = format!("environment `{}` has no `imageUpdates:`", named.name);
        return Err(file.map_or_else(|| Error::new(&message), |at| Error::at(at, &message)).with_help(
            "subscribe the first environment of a chain: imageUpdates: [{ image: registry.example/shop/web, releases: [web], policy: { semver: '>=1.4.0' } }]",
        ));
    }
    let environments: Vec<Environment> = selected.into_iter().filter(|e| e.image_updates.is_some()).collect();
    if environments.is_empty() {
        return Err(Error::new("no selected environment has `imageUpdates:`").with_help(
            "subscribe an environment to an image repository in its file (see the promotion guide's Image updates)",
        ));
    }
    Ok(environments)
}

/// Each repository's tags, read once however many subscriptions name it, `concurrency` at once.
fn tag_lists(
    environments: &[Environment],
    registries: &Registries,
    check: &Check,
    concurrency: usize,
) -> Result<HashMap<ImageRepository, Tags>> {
    let mut repositories: Vec<ImageRepository> = environments
        .iter()
        .flat_map(|e| e.image_updates.iter().flat_map(|u| u.entries.iter()))
        .map(|u| ImageRepository::locate(&u.image, u.plain_http))
        .collect();
    repositories.sort_by(|a, b| (&a.base, &a.path).cmp(&(&b.base, &b.path)));
    repositories.dedup();
    // Their own pool: the requests wait on the network, not on a core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(concurrency.clamp(1, repositories.len().max(1)))
        .thread_name(|index| format!("weaver-registry-{index}"))
        .build()
        .map_err(|err| Error::new(format!("cannot start the threads that ask the registries: {err}")))?;
    let found: Vec<(ImageRepository, Result<Tags>)> = pool.install(|| {
        use rayon::prelude::*;
        repositories.par_iter().map(|repository| (repository.clone(), registries.tags(repository, check))).collect()
    });
    found.into_iter().map(|(repository, tags)| Ok((repository, tags?))).collect()
}

fn check_environment(
    environment: &Environment,
    registries: &Registries,
    check: &Check,
    tags: &HashMap<ImageRepository, Tags>,
) -> Result<EnvironmentCheck> {
    let updates = environment.image_updates.as_ref().expect("only subscribed environments are checked");
    let mut images = Vec::new();
    for update in &updates.entries {
        let repository = ImageRepository::locate(&update.image, update.plain_http);
        let at = || format!("the imageUpdates entry of `{}` ({})", update.image, update.at);
        let listed = &tags[&repository];
        let choice = update
            .choose(&listed.list, &mut |tag| registries.created(&repository, tag, &update.platform, check))
            .map_err(|e| e.with_help(at()))?;
        // A followed tag is asked for its digest at every check; another, only when the
        // repository's tags changed (a tag re-pushed in place is then seen at the next change).
        let unchanged = listed.unchanged && !matches!(update.policy, Policy::Digest(_));
        let newest = match &choice.tag {
            None => None,
            Some(tag) => {
                let digest = registries
                    .digest_unless_unchanged(&repository, tag, unchanged, check)
                    .map_err(|e| e.with_help(at()))?;
                Some(format!("{tag}@{digest}"))
            }
        };
        let current: BTreeMap<String, Option<String>> = update
            .releases
            .iter()
            .map(|release| {
                let pinned = updates.written.releases.get(release).and_then(|r| r.images.get(&update.image)).cloned();
                (release.clone(), pinned)
            })
            .collect();
        let new = newest.is_some() && current.values().any(|pin| pin != &newest);
        let mut skipped: Vec<SkippedTags> = choice.skipped.iter().map(SkippedTags::from).collect();
        if listed.invalid > 0 {
            skipped.push(SkippedTags {
                reason: "not a tag by the OCI grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127} (left out)",
                count: listed.invalid,
                examples: listed.invalid_example.iter().cloned().collect(),
            });
        }
        images.push(ImageCheck {
            image: update.image.clone(),
            policy: update.policy.describe(),
            current,
            newest,
            new,
            tags: choice.considered,
            older: choice.older,
            skipped,
        });
    }
    Ok(EnvironmentCheck {
        environment: environment.name.clone(),
        file: promoted_path(&environment.name).display().to_string(),
        images,
    })
}

#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// The one environment updated.
    pub environment: String,
    /// Where the environment's plan reads (the working tree when `rev` is None) and the pins are
    /// committed (branched from HEAD when `rev` is None).
    pub proposal: Proposal,
}

/// What `weaver images update` found and wrote.
pub struct Update {
    pub check: EnvironmentCheck,
    /// The pins that change, as a promotion's (`revision` 0: no source revision).
    pub changes: Vec<PinChange>,
    /// The environment's plan with the new pins (against its cluster); None when nothing changes.
    pub plan: Option<Planned>,
    /// The branch and commit written; None for a dry run or nothing new.
    pub commit: Option<(String, String)>,
    pub dry_run: bool,
    pub requests: u64,
}

/// Checks the environment's subscriptions and, where a tag is new, writes the pins as one
/// commit on a new branch (unless a dry run), with the plan of the change.
pub async fn update(options: &UpdateOptions, registries: Arc<Registries>, cx: Context<'_>) -> Result<Update> {
    let checked = check_update(options, registries).await?;
    propose(options, checked, cx).await
}

/// What [`check_update`] found: the registries asked, no render done yet.
pub struct CheckedUpdate {
    environment: Environment,
    check: EnvironmentCheck,
    requests: u64,
}

/// The registries' half of [`update`]: the environment's subscriptions checked. The controller
/// runs it outside a render's turn (a slow registry must not hold a tenant's turn).
pub async fn check_update(options: &UpdateOptions, registries: Arc<Registries>) -> Result<CheckedUpdate> {
    let proposal = &options.proposal;
    let check_options = CheckOptions {
        repo: proposal.repo.clone(),
        environments: EnvironmentSelection {
            envs: vec![options.environment.clone()],
            max_file_bytes: proposal.limits.max_values_bytes.clone(),
            ..Default::default()
        },
        rev: proposal.rev.clone(),
        concurrency: proposal.concurrency,
    };
    // Loaded once: the check and the pins read the same environment. The registries' waits
    // (Retry-After) are the blocking pool's too.
    super::blocking(move || {
        let mut environments = subscribed(&check_options)?;
        let checks = check_loaded(&environments, &registries, check_options.concurrency)?;
        let check = checks.environments.into_iter().next().expect("the one environment named was checked");
        let environment = environments.remove(0);
        Ok(CheckedUpdate { environment, check, requests: checks.requests })
    })
    .await
}

/// The render's half of [`update`]: the new pins planned against the cluster and, unless a dry
/// run, committed.
pub async fn propose(options: &UpdateOptions, checked: CheckedUpdate, cx: Context<'_>) -> Result<Update> {
    let CheckedUpdate { environment, check, requests } = checked;
    let written = &environment.image_updates.as_ref().expect("checked above").written;
    let (promoted, changes) = new_pins(written, &check);
    let proposal = &options.proposal;
    let mut result = Update { check, changes, plan: None, commit: None, dry_run: proposal.dry_run, requests };
    if result.changes.is_empty() {
        return Ok(result);
    }
    let (repo, rev) = (proposal.repo.clone(), proposal.rev.clone());
    let project = super::blocking(move || super::open_project(&repo, rev.as_deref()))
        .await?
        .bounded(proposal.limits.max_values_bytes.as_ref());
    let servers = SharedServers::new(proposal.concurrency)?;
    let planned = proposal.plan(&project, proposal.rev.as_deref(), &environment.name, &promoted, &servers, cx).await?;
    result.plan = Some(planned);
    if !proposal.dry_run {
        let file = promoted_path(&environment.name).display().to_string();
        let files = BTreeMap::from([(file, promoted.to_text(&environment.name).into_bytes())]);
        let mut message = format!("Update images of {}\n\n", environment.name);
        for change in &result.changes {
            message.push_str(&format!(
                "{}: release `{}` image {} = {}\n",
                environment.name, change.release, change.name, change.to
            ));
        }
        let environments = vec![environment.name.clone()];
        result.commit = Some(proposal.commit("images", environments, files, message).await?);
    }
    Ok(result)
}

/// The promotions file with the newest tags, and what changes against what it had.
fn new_pins(written: &Promoted, check: &EnvironmentCheck) -> (Promoted, Vec<PinChange>) {
    let mut promoted = written.clone();
    let mut changes = Vec::new();
    for image in check.images.iter().filter(|i| i.new) {
        let Some(newest) = &image.newest else { continue };
        for (release, current) in &image.current {
            if current.as_ref() == Some(newest) {
                continue;
            }
            let entry = promoted.releases.entry(release.clone()).or_default();
            entry.images.insert(image.image.clone(), newest.clone());
            changes.push(PinChange {
                release: release.clone(),
                pin: "image",
                name: image.image.clone(),
                from: current.clone().map(Value::from),
                to: Value::from(newest.clone()),
                revision: 0,
            });
        }
    }
    (promoted, changes)
}
