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
use super::fleet::{EnvironmentSelection, select_in};
use super::plan::Planned;
use super::promote::{PinChange, Proposal};
use weaver_cluster::SharedServers;
use weaver_core::error::{Error, Result};
use weaver_project::Environment;
use weaver_project::image_updates::Skipped;
use weaver_project::image_updates::{ImageUpdate, Policy};
use weaver_project::promotion::{Promoted, promoted_path};
use weaver_source::images::{Check, ImageRepository, Registries, Tags};
use weaver_verify::cosign::CosignKeys;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub repo: PathBuf,
    /// The environments (`--env`, `--env-selector`, `--wave`, `--shard`); every one with
    /// `imageUpdates:` when none is named.
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
    /// With `verify`: allowed tags newer than `newest` whose signatures did not pass, by reason,
    /// with the first few of each.
    pub passed_over: Vec<SkippedTags>,
    /// With `verify`: who signed `newest` (`keys/cosign.pub (ECDSA P-256 key SHA256:…)`);
    /// null without `verify` or when no tag is taken.
    pub signed_by: Option<String>,
    /// With `verify`: why `newest` is not proposed though it differs from a pin (it ranks
    /// below it); null otherwise.
    pub held_back: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTags {
    pub reason: &'static str,
    pub count: usize,
    pub examples: Vec<String>,
}

/// `3 not a semantic version (latest, main-99, main-100, …)`: how the text output and the
/// EnvironmentSync's status say them.
impl std::fmt::Display for SkippedTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let more = if self.count > self.examples.len() { ", …" } else { "" };
        write!(f, "{} {} ({}{more})", self.count, self.reason, self.examples.join(", "))
    }
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

/// Most tags whose signatures one subscription with `verify` checks in one check, newest
/// first, and most requests those checks may send (a tag's digest, its signature manifest, a
/// payload per signature): a registry is not trusted to bound what its answers cost.
pub const MOST_SIGNATURE_CHECKS: usize = 20;
pub const MOST_SIGNATURE_REQUESTS: u64 = 100;
/// Why a tag past those bounds is not taken.
const NOT_CHECKED: &str =
    "not checked: one check reads the signatures of the newest allowed tags only, and none of those passed";

/// The subscribed environments, and the cosign keys their `verify` entries name, by path.
struct Subscribed {
    environments: Vec<Environment>,
    keys: HashMap<String, CosignKeys>,
}

/// Checks each selected environment's subscriptions against its registries.
pub fn check(options: &CheckOptions, registries: &Registries) -> Result<Checks> {
    check_loaded(&subscribed(options)?, registries, options.concurrency)
}

/// [`check`] of environments already loaded.
fn check_loaded(subscribed: &Subscribed, registries: &Registries, concurrency: usize) -> Result<Checks> {
    let before = registries.requests();
    let check = registries.check();
    let mut checks = Vec::new();
    let tags = tag_lists(&subscribed.environments, registries, &check, concurrency)?;
    for environment in &subscribed.environments {
        checks.push(check_environment(environment, &subscribed.keys, registries, &check, &tags)?);
    }
    Ok(Checks { environments: checks, requests: registries.requests() - before })
}

/// The selected environments that have `imageUpdates:`; one named by `--env` without them is
/// an error, one picked by a glob or selector is passed over, and none at all is an error unless
/// a shard was asked for. The keys of `verify` are read from the same commit.
fn subscribed(options: &CheckOptions) -> Result<Subscribed> {
    let project = super::open_project(&options.repo, options.rev.as_deref())?
        .bounded(options.environments.max_file_bytes.as_ref());
    let selected = select_in(&project, &options.environments)?;
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
    // A shard (one CI runner's part, which `select_environments` may leave empty) may hold no
    // subscribed environment: nothing to check rather than an error, as for the fleet commands.
    if environments.is_empty() && options.environments.shard.is_none() {
        return Err(Error::new("no selected environment has `imageUpdates:`").with_help(
            "subscribe an environment to an image repository in its file (see the promotion guide's Image updates)",
        ));
    }
    let mut keys = HashMap::new();
    for update in environments.iter().flat_map(|e| e.image_updates.iter().flat_map(|u| u.entries.iter())) {
        if let Some((path, at)) = &update.verify
            && !keys.contains_key(path)
        {
            keys.insert(path.clone(), super::verify::cosign_keys(project.source.as_ref(), path, Some(at))?);
        }
    }
    Ok(Subscribed { environments, keys })
}

/// Each repository's tags, read once however many subscriptions name it, `concurrency` at once.
fn tag_lists(
    environments: &[Environment],
    registries: &Registries,
    check: &Check,
    concurrency: usize,
) -> Result<HashMap<ImageRepository, Tags>> {
    // Each repository with its first subscription, which a refusal of its tags names.
    let mut repositories: Vec<(ImageRepository, &ImageUpdate)> = environments
        .iter()
        .flat_map(|e| e.image_updates.iter().flat_map(|u| u.entries.iter()))
        .map(|u| (ImageRepository::locate(&u.image, u.plain_http), u))
        .collect();
    repositories.sort_by(|(a, _), (b, _)| (&a.base, &a.path).cmp(&(&b.base, &b.path)));
    repositories.dedup_by(|(a, _), (b, _)| a == b);
    // Their own pool: the requests wait on the network, not on a core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(concurrency.clamp(1, repositories.len().max(1)))
        .thread_name(|index| format!("weaver-registry-{index}"))
        .build()
        .map_err(|err| Error::new(format!("cannot start the threads that ask the registries: {err}")))?;
    let found: Vec<Result<(ImageRepository, Tags)>> = pool.install(|| {
        use rayon::prelude::*;
        repositories
            .par_iter()
            .map(|(repository, first)| {
                let tags = registries.tags(repository, check).map_err(|e| e.context(subscription(first)))?;
                Ok((repository.clone(), tags))
            })
            .collect()
    });
    found.into_iter().collect()
}

/// How an error of a registry names the subscription it was asked for, before what went wrong;
/// the error's help (a registry's: where credentials come from, that it limits requests) stays.
fn subscription(update: &ImageUpdate) -> String {
    format!("the imageUpdates entry of `{}` ({})", update.image, update.at)
}

fn check_environment(
    environment: &Environment,
    keys: &HashMap<String, CosignKeys>,
    registries: &Registries,
    check: &Check,
    tags: &HashMap<ImageRepository, Tags>,
) -> Result<EnvironmentCheck> {
    let updates = environment.image_updates.as_ref().expect("only subscribed environments are checked");
    let mut images = Vec::new();
    for update in &updates.entries {
        let repository = ImageRepository::locate(&update.image, update.plain_http);
        let listed = &tags[&repository];
        // A followed tag is asked for its digest at every check; another, only when the
        // repository's tags changed (a tag re-pushed in place is then seen at the next change).
        let unchanged = listed.unchanged && !matches!(update.policy, Policy::Digest(_));
        let trusted = update.verify.as_ref().map(|(path, _)| &keys[path]);
        let (mut checked, mut verified, mut first_request) = (0, None, None);
        // With `verify`, a tag is taken only when a trusted key signed its digest, and that
        // digest, the one checked, is the pin. The requests counted are the signatures' alone,
        // from the first check on: `newestBuild` has read its configs before.
        let mut signed = |tag: &str| -> Result<Option<&'static str>> {
            let Some(trusted) = trusted else { return Ok(None) };
            let spent = registries.requests() - *first_request.get_or_insert_with(|| registries.requests());
            if checked == MOST_SIGNATURE_CHECKS || spent >= MOST_SIGNATURE_REQUESTS {
                return Ok(Some(NOT_CHECKED));
            }
            checked += 1;
            let digest = registries.digest_unless_unchanged(&repository, tag, unchanged, check)?;
            Ok(match registries.signature(&repository, &digest, trusted, &listed.list, check)? {
                Ok(signer) => {
                    verified = Some((digest, signer.to_string()));
                    None
                }
                Err(refusal) => Some(refusal.reason()),
            })
        };
        let mut created = |tag: &str| registries.created(&repository, tag, &update.platform, check);
        let choice =
            update.choose(&listed.list, &mut created, &mut signed).map_err(|e| e.context(subscription(update)))?;
        let (newest, signed_by) = match (&choice.tag, verified) {
            (None, _) => (None, None),
            (Some(tag), Some((digest, signer))) => (Some(format!("{tag}@{digest}")), Some(signer)),
            (Some(tag), None) => {
                let digest = registries
                    .digest_unless_unchanged(&repository, tag, unchanged, check)
                    .map_err(|e| e.context(subscription(update)))?;
                (Some(format!("{tag}@{digest}")), None)
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
        // With `verify`, a pin is never moved down to an older tag: a tag whose signature went
        // away (or was re-pushed unsigned) would else roll the environment back.
        let mut held_back = None;
        if let (Some(_), Some(chosen)) = (trusted, &choice.tag) {
            for pin in current.values().flatten() {
                let (pinned, digest) = pin.split_once('@').unwrap_or((pin.as_str(), ""));
                // The pinned image by its digest: its tag may be gone or moved.
                let mut created = |tag: &str| match tag == pinned && !digest.is_empty() {
                    true => registries.created_at(&repository, digest, tag, &update.platform, check),
                    false => registries.created(&repository, tag, &update.platform, check),
                };
                if update.ranks_above(pinned, chosen, &mut created).map_err(|e| e.context(subscription(update)))? {
                    held_back = Some(format!(
                        "the pin {pinned} ranks above {chosen}, the newest tag that verifies now: a verified subscription never moves a pin down"
                    ));
                }
            }
        }
        let new = held_back.is_none() && newest.is_some() && current.values().any(|pin| pin != &newest);
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
            passed_over: choice.passed_over.iter().map(SkippedTags::from).collect(),
            signed_by,
            held_back,
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
        let mut subscribed = subscribed(&check_options)?;
        let checks = check_loaded(&subscribed, &registries, check_options.concurrency)?;
        let check = checks.environments.into_iter().next().expect("the one environment named was checked");
        let environment = subscribed.environments.remove(0);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard, Repo, failure};
    use sha2::Digest;
    use weaver_plan::plan::Action;
    use weaver_source::charts::http::Machine;
    use weaver_test_support::http_server::{Answer, TestServer};

    /// The digest the test registries give `tag`: one of its own per tag.
    fn digest(tag: &str) -> String {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(tag.as_bytes())))
    }

    /// `tag@digest`, as a pin of `tag` is written.
    fn pin(tag: &str) -> String {
        format!("{tag}@{}", digest(tag))
    }

    fn tag_list(tags: &[&str], next: Option<&str>) -> Answer {
        let link = next.map(|next| format!("Link: <{next}>; rel=\"next\"\r\n")).unwrap_or_default();
        ("200 OK", link, serde_json::to_vec(&serde_json::json!({"name": "shop/web", "tags": tags})).unwrap())
    }

    /// A registry holding `shop/web`: its tags in two pages, the second behind the first's
    /// `Link`, and each tag's digest (`HEAD` of its manifest). Anything else is not found.
    fn registry(first: &'static [&'static str], second: &'static [&'static str]) -> TestServer {
        const NEXT: &str = "/v2/shop/web/tags/list?n=3&last=page-one";
        TestServer::start(move |_, request| match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v2/shop/web/tags/list") => tag_list(first, Some(NEXT)),
            ("GET", NEXT) => tag_list(second, None),
            ("HEAD", path) => match path.strip_prefix("/v2/shop/web/manifests/") {
                Some(tag) if first.contains(&tag) || second.contains(&tag) => {
                    ("200 OK", format!("Docker-Content-Digest: {}\r\n", digest(tag)), Vec::new())
                }
                _ => ("404 Not Found", String::new(), Vec::new()),
            },
            _ => ("404 Not Found", String::new(), Vec::new()),
        })
    }

    /// The image `path` of `registry`, as containers name it.
    fn image(registry: &TestServer, path: &str) -> String {
        format!("127.0.0.1:{}/{path}", registry.port)
    }

    /// Registries without credentials, as the controller's are without pull Secrets.
    fn registries() -> Registries {
        Registries::new(Machine::anonymous(), "the test's credentials")
    }

    /// The fixture's repository with environment `dev` subscribed to `entries` (the lines of
    /// `imageUpdates:`), and release `web` running `image` at 1.4.2.
    fn subscribe(repo: &Repo, image: &str, entries: &str) {
        repo.write(
            "environments/dev.yaml",
            &format!("namespace: dev\nreleases:\n  - name: web\n    chart: app\nimageUpdates:\n{entries}"),
        );
        repo.write("charts/app/values.yaml", &format!("greeting: hello\nimage: {image}:1.4.2\n"));
    }

    /// `imageUpdates:`' one entry: `image` for release `web` by `policy`.
    fn entry(image: &str, policy: &str) -> String {
        format!("  - {{image: {image}, releases: [web], plainHttp: true, policy: {{{policy}}}}}\n")
    }

    fn check_options(repo: &Repo, envs: &[&str]) -> CheckOptions {
        let environments =
            EnvironmentSelection { envs: envs.iter().map(|e| e.to_string()).collect(), ..Default::default() };
        CheckOptions { repo: repo.path(), environments, rev: None, concurrency: 2 }
    }

    /// The repository as a git repository of one commit, as `weaver images update` needs one
    /// to branch from.
    fn commit_all(repo: &Repo) -> git2::Repository {
        let git = weaver_test_support::git::init(&repo.path());
        weaver_test_support::git::commit_all(&git, "first");
        git
    }

    fn branches(git: &git2::Repository) -> Vec<String> {
        let local = git.branches(Some(git2::BranchType::Local)).expect("the branches");
        local.map(|b| b.expect("a branch").0.name().expect("a name").expect("UTF-8").to_string()).collect()
    }

    fn update_options(fixture: &Fixture, dry_run: bool) -> UpdateOptions {
        let proposal = Proposal {
            repo: fixture.repo.path(),
            connect: fixture.connect(),
            concurrency: 2,
            keys: fixture.repo.render_options().keys,
            dry_run,
            branch: Some("images/dev".into()),
            rev: None,
            author: Some(("Image Bot".into(), "images@weaver.invalid".into())),
            signing_key: None,
            charts: weaver_source::charts::Archives::Machine,
            limits: Default::default(),
        };
        UpdateOptions { environment: "dev".into(), proposal }
    }

    /// The image the plan gives the Deployment's container, and what it does with the Deployment.
    fn planned_image(planned: &Planned) -> (Action, String) {
        let deployment = planned.plan.objects.iter().find(|o| o.key.kind == "Deployment").expect("the Deployment");
        let after = deployment.after.as_ref().expect("kept");
        let image = after["spec"]["template"]["spec"]["containers"][0]["image"].as_str().expect("an image");
        (deployment.action, image.to_string())
    }

    /// Each policy takes the newest tag it allows from every page of the list, read once for
    /// both subscriptions; a pin already at it is not new; the tags passed over are counted
    /// by why.
    #[test]
    fn each_policy_takes_its_newest_tag_from_every_page_and_says_why_not_the_others() {
        // Numerically main-10 is the newer; alphabetically main-9 would be.
        let registry = registry(&["1.4.2", "main-9", "1.6.0-rc.1"], &["1.5.0", "2.0.0", "main-10"]);
        let web = image(&registry, "shop/web");
        let repo = Repo::new();
        let numbered = "filterTags: {pattern: '^main-(?P<n>[0-9]+)$', extract: '$n'}, policy: {numerical: asc}";
        let entries = format!(
            "{}  - {{image: {web}, releases: [web], plainHttp: true, {numbered}}}\n",
            entry(&web, "semver: '>=1.4.0 <2'")
        );
        subscribe(&repo, &web, &entries);
        repo.write("promotions/dev.yaml", &format!("releases:\n  web:\n    images:\n      {web}: {}\n", pin("1.5.0")));

        let checks = check(&check_options(&repo, &[]), &registries()).unwrap();
        let [dev] = checks.environments.as_slice() else { panic!("one environment: {checks:?}") };
        assert_eq!((dev.environment.as_str(), dev.file.as_str()), ("dev", "promotions/dev.yaml"));
        let [semver, numerical] = dev.images.as_slice() else { panic!("two subscriptions: {dev:?}") };
        assert_eq!(semver.newest, Some(pin("1.5.0")));
        assert_eq!(semver.current, BTreeMap::from([("web".to_string(), Some(pin("1.5.0")))]));
        assert!(!semver.new, "the pin is the newest already");
        assert_eq!((semver.tags, semver.older), (6, 1), "1.4.2 allowed, but older");
        let mut skipped: Vec<(&str, usize, Vec<String>)> =
            semver.skipped.iter().map(|s| (s.reason, s.count, s.examples.clone())).collect();
        skipped.sort();
        assert_eq!(
            skipped,
            [
                ("a pre-release (prereleases: true takes them)", 1, vec!["1.6.0-rc.1".to_string()]),
                ("not a semantic version", 2, vec!["main-9".to_string(), "main-10".to_string()]),
                ("outside the range", 1, vec!["2.0.0".to_string()]),
            ]
        );
        assert_eq!(numerical.newest, Some(pin("main-10")));
        assert!(numerical.new && checks.has_new(), "web's pin is not main-10's");

        let received = registry.received();
        let lists: Vec<&str> =
            received.iter().filter(|r| r.path.contains("/tags/list")).map(|r| r.path.as_str()).collect();
        assert_eq!(lists, ["/v2/shop/web/tags/list", "/v2/shop/web/tags/list?n=3&last=page-one"], "read once");
        assert_eq!(checks.requests, received.len() as u64, "every request the registry received is counted");
    }

    /// An environment named without `imageUpdates:` is an error at its file; none subscribed
    /// at all, another.
    #[test]
    fn an_environment_without_image_updates_is_named() {
        let repo = Repo::new();
        let named = check(&check_options(&repo, &["dev"]), &registries()).unwrap_err();
        assert_eq!(named.message, "environment `dev` has no `imageUpdates:`");
        assert_eq!(named.location.map(|at| at.path), Some(PathBuf::from("environments/dev.yaml")));
        let message = failure(check(&check_options(&repo, &[]), &registries()));
        assert!(message.starts_with("no selected environment has `imageUpdates:`"), "{message}");
    }

    /// What a registry refuses stops the check with the request it refused (its registry and
    /// repository), and why: no such repository, or credentials wanted (and where they come
    /// from).
    #[test]
    fn a_registry_s_refusal_names_the_registry_the_repository_and_why() {
        let registry = TestServer::start(|_, request| match request.path.as_str() {
            "/v2/shop/private/tags/list" => {
                ("401 Unauthorized", "WWW-Authenticate: Basic realm=\"registry\"\r\n".into(), Vec::new())
            }
            _ => ("404 Not Found", String::new(), Vec::new()),
        });
        let host = format!("127.0.0.1:{}", registry.port);
        let repo = Repo::new();
        for (path, refused) in [
            ("shop/gone", format!("404 (help: registry {host} has no repository `shop/gone` or no such tag)")),
            (
                "shop/private",
                format!(
                    "401 (help: registry {host} refused the request: check its credentials in the test's credentials)"
                ),
            ),
        ] {
            let subscribed = image(&registry, path);
            subscribe(&repo, &subscribed, &entry(&subscribed, "semver: '>=1'"));
            let message = failure(check(&check_options(&repo, &[]), &registries()));
            let at = format!("the imageUpdates entry of `{subscribed}` (environments/dev.yaml:6:5)");
            assert_eq!(message, format!("{at}: http://{host}/v2/{path}/tags/list answered HTTP {refused}"));
        }
    }

    /// A refusal of the chosen tag's digest names the subscription that chose it, and keeps
    /// the registry's why: where credentials come from.
    #[test]
    fn a_refused_digest_names_the_subscription_and_why() {
        let registry = TestServer::start(|_, request| match request.path.as_str() {
            "/v2/shop/web/tags/list" => tag_list(&["1.5.0"], None),
            _ => ("401 Unauthorized", "WWW-Authenticate: Basic realm=\"registry\"\r\n".into(), Vec::new()),
        });
        let (host, web) = (format!("127.0.0.1:{}", registry.port), image(&registry, "shop/web"));
        let repo = Repo::new();
        subscribe(&repo, &web, &entry(&web, "semver: '>=1'"));
        let message = failure(check(&check_options(&repo, &[]), &registries()));
        assert_eq!(
            message,
            format!(
                "the imageUpdates entry of `{web}` (environments/dev.yaml:6:5): http://{host}/v2/shop/web/manifests/1.5.0 \
                 answered HTTP 401 (help: registry {host} refused the request: check its credentials in the test's credentials)"
            )
        );
    }

    /// `weaver images update` plans the environment with the new pin against its cluster and
    /// commits the promotions file on a new branch, leaving the working tree and HEAD as they
    /// were; the commit says each pin (as JSON, as a promotion's message says its pins).
    #[tokio::test(flavor = "multi_thread")]
    async fn update_commits_the_new_pin_on_a_branch_with_its_plan() {
        let registry = registry(&["1.4.2", "1.5.0"], &["2.0.0"]);
        let web = image(&registry, "shop/web");
        let fixture = Fixture::start().await;
        subscribe(&fixture.repo, &web, &entry(&web, "semver: '>=1.4.0 <2'"));
        let git = commit_all(&fixture.repo);
        let head = git.head().unwrap().peel_to_commit().unwrap().id();
        fixture.apply().await;
        fixture.writes();

        let options = update_options(&fixture, false);
        let updated = update(&options, Arc::new(registries()), Heard::default().cx()).await.unwrap();
        let changes: Vec<(&str, &str, &str, Option<&Value>, &Value)> = updated
            .changes
            .iter()
            .map(|c| (c.release.as_str(), c.pin, c.name.as_str(), c.from.as_ref(), &c.to))
            .collect();
        assert_eq!(changes, [("web", "image", web.as_str(), None, &Value::from(pin("1.5.0")))]);
        let plan = updated.plan.as_ref().expect("the plan of the change");
        assert_eq!(planned_image(plan), (Action::Update, format!("{web}:{}", pin("1.5.0"))));
        assert!(fixture.writes().iter().all(|w| w.ends_with("(dry run)")), "the plan wrote to the cluster");

        let (branch, commit) = updated.commit.as_ref().expect("committed");
        assert_eq!(branch, "images/dev");
        let committed = git.find_commit(commit.parse().unwrap()).unwrap();
        let author = committed.author();
        assert_eq!((committed.parent_id(0).unwrap(), author.name().unwrap()), (head, "Image Bot"));
        assert_eq!(
            committed.message().unwrap(),
            format!("Update images of dev\n\ndev: release `web` image {web} = \"{}\"\n", pin("1.5.0"))
        );
        let file = committed.tree().unwrap().get_path(std::path::Path::new("promotions/dev.yaml")).unwrap();
        let written = String::from_utf8(git.find_blob(file.id()).unwrap().content().to_vec()).unwrap();
        assert!(written.contains(&format!("{web}: {}", pin("1.5.0"))), "{written}");
        assert_eq!(git.head().unwrap().peel_to_commit().unwrap().id(), head, "HEAD stays");
        assert!(!fixture.repo.path().join("promotions").exists(), "the working tree stays");
    }

    /// A dry run plans the new pin and writes nothing: no branch, no file, nothing to the
    /// cluster.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_dry_run_plans_the_new_pin_and_writes_nothing() {
        let registry = registry(&["1.4.2", "1.5.0"], &[]);
        let web = image(&registry, "shop/web");
        let fixture = Fixture::start().await;
        subscribe(&fixture.repo, &web, &entry(&web, "semver: '>=1.4.0'"));
        let git = commit_all(&fixture.repo);
        let before = branches(&git);

        let updated =
            update(&update_options(&fixture, true), Arc::new(registries()), Heard::default().cx()).await.unwrap();
        assert!(updated.dry_run && updated.commit.is_none());
        assert_eq!(updated.changes.len(), 1);
        let plan = updated.plan.as_ref().expect("the plan of the change");
        assert_eq!(planned_image(plan), (Action::Create, format!("{web}:{}", pin("1.5.0"))));
        assert_eq!(branches(&git), before, "no branch");
        assert!(!fixture.repo.path().join("promotions").exists());
        assert!(fixture.writes().iter().all(|w| w.ends_with("(dry run)")), "the plan wrote to the cluster");
    }

    /// Pins at the newest tags already: nothing changes, nothing is planned or written.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_update_with_nothing_new_plans_and_writes_nothing() {
        let registry = registry(&["1.4.2", "1.5.0"], &[]);
        let web = image(&registry, "shop/web");
        let fixture = Fixture::start().await;
        subscribe(&fixture.repo, &web, &entry(&web, "semver: '>=1.4.0'"));
        fixture
            .repo
            .write("promotions/dev.yaml", &format!("releases:\n  web:\n    images:\n      {web}: {}\n", pin("1.5.0")));
        let git = commit_all(&fixture.repo);
        let before = branches(&git);

        let updated =
            update(&update_options(&fixture, false), Arc::new(registries()), Heard::default().cx()).await.unwrap();
        assert_eq!(updated.check.images[0].newest, Some(pin("1.5.0")));
        assert!(updated.changes.is_empty() && updated.plan.is_none() && updated.commit.is_none());
        assert_eq!(branches(&git), before);
        assert!(fixture.server.requests().is_empty(), "the cluster was asked: {:?}", fixture.server.requests());
    }

    /// A registry's refusal in an update stops it before anything is planned or written.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_update_the_registry_refuses_writes_nothing() {
        let registry = registry(&[], &[]);
        let gone = image(&registry, "shop/gone");
        let fixture = Fixture::start().await;
        subscribe(&fixture.repo, &gone, &entry(&gone, "semver: '>=1.4.0'"));
        let git = commit_all(&fixture.repo);
        let before = branches(&git);

        let message =
            failure(update(&update_options(&fixture, false), Arc::new(registries()), Heard::default().cx()).await);
        assert!(
            message.contains(&format!("{}/v2/shop/gone/tags/list answered HTTP 404", registry.origin())),
            "{message}"
        );
        assert_eq!(branches(&git), before);
        assert!(!fixture.repo.path().join("promotions").exists());
        assert!(fixture.server.requests().is_empty(), "the cluster was asked: {:?}", fixture.server.requests());
    }
}
