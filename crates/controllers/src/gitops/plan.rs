//! What an EnvironmentSync's reconcile does next, decided from its spec and status alone: no
//! request is made here, so every rule is unit-tested. `reconcile` observes and carries out.

use std::time::Duration;

use weaver_api::environment_sync::{Pushing, Reason, VerifyMode, VerifyProvider};
use weaver_api::windows::Windows;
use weaver_source::artifacts::Wanted;
use weaver_source::charts::oci::Artifact;

pub use super::api::{
    APPROVED_BY, Approval, ApprovalRecord, EnvironmentSync, EnvironmentSyncStatus, HistoryEntry,
    RECONCILE_REQUESTED_AT, RefKind, WindowHold, short,
};

/// Fetched and reconciled this often without `interval`, as Flux's default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// The git fetch and each environment's apply are bounded by this without `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How many reconciles `status.history` keeps.
pub const HISTORY: usize = 5;
/// Waiting for a dependency: looked at again this soon, and at once when the dependency, watched
/// by the same controller, turns Ready ([`woken_by`]).
pub const DEPENDENCY_RETRY: Duration = Duration::from_secs(10);

/// What a reconcile fetches.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetching {
    /// `spec.source.url` at `spec.source.ref`.
    Git(RefKind, String),
    /// `spec.source.oci`, at its tag, the highest tag of its semver range, or its digest.
    Oci(Wanted),
}

/// The spec, checked and with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub source: Fetching,
    pub interval: Duration,
    pub retry_interval: Duration,
    pub timeout: Duration,
    pub prune: bool,
    /// Wait for what was applied to be ready.
    pub wait: bool,
    /// The ServiceAccount every request of the apply is made as.
    pub account: String,
    /// `spec.promotion`, checked.
    pub promotion: Option<Promotion>,
    /// `spec.imageUpdates`, checked (boxed: most EnvironmentSyncs have none).
    pub image_updates: Option<Box<ImageUpdates>>,
    /// `spec.source.verify`: which commits are checked, and the Secret of the trust list.
    pub verify: Option<(VerifyMode, String)>,
    /// `spec.source.oci.verify`: the Secret of the cosign public keys the artifact's manifest
    /// must be signed by.
    pub cosign_keys: Option<String>,
    /// `spec.previews`, checked (boxed: most EnvironmentSyncs have none).
    pub previews: Option<Box<super::previews::Settings>>,
}

/// `spec.imageUpdates`, with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageUpdates {
    /// When and where it pushes.
    pub pushing: Promotion,
    /// The pull Secrets' names.
    pub pull_secrets: Vec<String>,
}

/// How often image updates ask the registries without `spec.imageUpdates.interval`.
pub const DEFAULT_IMAGE_UPDATE_INTERVAL: Duration = Duration::from_secs(300);

/// How often auto-promotion judges the gates without `spec.promotion.interval`.
pub const DEFAULT_PROMOTION_INTERVAL: Duration = Duration::from_secs(600);

/// `spec.promotion` (or `spec.imageUpdates`), with its defaults: what a pushing run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub interval: Duration,
    /// The branch pushed to.
    pub branch: String,
    /// Replace what the branch holds (a branch of its own), rather than fast-forward it (the
    /// tracked branch).
    pub force: bool,
    /// (name, email).
    pub author: (String, String),
    /// The Secret holding the key its commits are signed with.
    pub signing_key: Option<String>,
}

impl Settings {
    /// How soon the next reconcile is due: the interval, or sooner for a promotion.
    pub fn next(&self) -> Duration {
        let promotion = self.promotion.as_ref().map(|p| p.interval);
        let images = self.image_updates.as_ref().map(|u| u.pushing.interval);
        promotion.into_iter().chain(images).fold(self.interval, Duration::min)
    }
}

/// The first retry after a failure that granting a right or creating an object mends.
pub const ACCESS_RETRY: Duration = Duration::from_secs(5);

/// Failures that a user mends elsewhere (a Role granted, a Secret or ServiceAccount created),
/// which no change of the EnvironmentSync tells the controller about.
fn mended_elsewhere(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::SecretUnreadable | Reason::SecretNotFound | Reason::ServiceAccountNotFound | Reason::TokenRequestFailed
    )
}

/// How soon a reconcile that failed with `reason` is retried, `failing` after the failure
/// began (its Ready condition's transition): for a failure mended elsewhere, as long as it has
/// lasted, at least [`ACCESS_RETRY`] (5 s, 5 s, 10 s, 20 s: doubling), at most the
/// retryInterval; for any other, the retryInterval.
pub fn retry_after(settings: &Settings, reason: &Reason, failing: Duration) -> Duration {
    match mended_elsewhere(reason) {
        true => failing.max(ACCESS_RETRY).min(settings.retry_interval),
        false => settings.retry_interval,
    }
}

/// Whether a promotion is due at `now`: never tried, or tried `interval` ago or more.
pub fn promotion_due(sync: &EnvironmentSync, interval: Duration, now: jiff::Timestamp) -> bool {
    let last = sync.status.as_ref().and_then(|s| s.promotion.as_ref()).map(|p| p.push.last_attempt_time.as_str());
    due(last, interval, now)
}

/// Whether an image update is due at `now`, as [`promotion_due`].
pub fn image_update_due(sync: &EnvironmentSync, interval: Duration, now: jiff::Timestamp) -> bool {
    let last = sync.status.as_ref().and_then(|s| s.image_updates.as_ref()).map(|p| p.push.last_attempt_time.as_str());
    due(last, interval, now)
}

fn due(last: Option<&str>, interval: Duration, now: jiff::Timestamp) -> bool {
    match last.map(str::parse::<jiff::Timestamp>) {
        Some(Ok(at)) => now.duration_since(at) >= jiff::SignedDuration::try_from(interval).unwrap_or_default(),
        _ => true,
    }
}

/// Whether the reconcile goes on, and why not.
// One per reconcile, matched at once: boxing `Go` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// `suspend: true`: nothing is fetched or applied, the status stays.
    Suspended,
    /// The spec cannot be acted on until it changes: Stalled, with a CamelCase reason.
    Invalid {
        reason: Reason,
        message: String,
    },
    Go(Settings),
}

/// Checks `sync`'s spec; `default_account` is the controller's `--default-service-account`.
pub fn gate(sync: &EnvironmentSync, default_account: Option<&str>) -> Gate {
    let spec = &sync.spec;
    if spec.suspend {
        return Gate::Suspended;
    }
    let invalid = |reason, message: String| Gate::Invalid { reason, message };
    let source = match fetching(&spec.source) {
        Ok(source) => source,
        Err((reason, message)) => return invalid(reason, message),
    };
    let duration = |field: &str, value: &Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(text) => weaver_project::parse_duration(text).map_err(|why| format!("spec.{field}: {why}")),
    };
    let durations = duration("interval", &spec.interval, DEFAULT_INTERVAL).and_then(|interval| {
        let retry = duration("retryInterval", &spec.retry_interval, interval)?;
        Ok((interval, retry, duration("timeout", &spec.timeout, DEFAULT_TIMEOUT)?))
    });
    let (interval, retry_interval, timeout) = match durations {
        Ok(durations) => durations,
        Err(message) => return invalid(Reason::InvalidSpec, message),
    };
    if let Err(message) = Windows::parse(&spec.windows) {
        return invalid(Reason::InvalidWindows, message);
    }
    if spec.environments.is_empty() && spec.environment_selector.is_none() {
        return invalid(
            Reason::NoEnvironments,
            "the spec selects no environment: give spec.environments (names or globs) or spec.environmentSelector"
                .into(),
        );
    }
    let Some(account) = spec.service_account_name.as_deref().or(default_account) else {
        return invalid(
            Reason::ServiceAccountRequired,
            "no ServiceAccount to apply as: set spec.serviceAccountName (the controller has no \
             --default-service-account), so that the account's RBAC bounds what this EnvironmentSync may do"
                .into(),
        );
    };
    let tracked = match &source {
        Fetching::Git(RefKind::Branch, branch) => Some(branch.clone()),
        _ => None,
    };
    // Where a promotion or an image update pushes: `push.branch`, else the tracked branch.
    let pushing = |field: &str, run: &Pushing, default| {
        if let Fetching::Oci(_) = source {
            return Err(format!(
                "spec.{field} commits to spec.source's git repository, and spec.source.oci is no git repository: \
                 give spec.{field} to an EnvironmentSync of the git repository the artifact is pushed from"
            ));
        }
        let interval = duration(&format!("{field}.interval"), &run.interval, default)?;
        let branch = match (run.push.as_ref().map(|p| p.branch.clone()), tracked.clone()) {
            (Some(branch), _) | (None, Some(branch)) => branch,
            (None, None) => {
                return Err(format!(
                    "spec.{field} has no push.branch and spec.source.ref names no branch to push to: name one in spec.{field}.push.branch"
                ));
            }
        };
        let force = tracked.as_deref() != Some(branch.as_str());
        let signing_key = run.signing_key.as_ref().map(|key| key.secret_ref.name.clone());
        // Unsigned, its commits would fail the verification of the environments that read them.
        if spec.source.verify.is_some() && signing_key.is_none() {
            return Err(format!(
                "spec.source.verify is set, so what spec.{field} pushes must be signed: name the key's Secret in \
                 spec.{field}.signingKey.secretRef"
            ));
        }
        let author = (run.author.name.clone(), run.author.email.clone());
        Ok(Promotion { interval, branch, force, author, signing_key })
    };
    let promotion = match &spec.promotion {
        None => None,
        Some(p) => match pushing("promotion", p, DEFAULT_PROMOTION_INTERVAL) {
            Ok(promotion) => Some(promotion),
            Err(message) => return invalid(Reason::InvalidSpec, message),
        },
    };
    let image_updates = match &spec.image_updates {
        None => None,
        Some(u) => match pushing("imageUpdates", &u.pushing, DEFAULT_IMAGE_UPDATE_INTERVAL) {
            Ok(pushing) => {
                let pull_secrets = u.pull_secrets.iter().map(|s| s.name.clone()).collect();
                Some(Box::new(ImageUpdates { pushing, pull_secrets }))
            }
            Err(message) => return invalid(Reason::InvalidSpec, message),
        },
    };
    let previews = match (&spec.previews, &source) {
        (None, _) => None,
        // Its branches are the git repository's: an artifact has none.
        (Some(_), Fetching::Oci(_)) => {
            return invalid(
                Reason::InvalidSpec,
                "spec.previews makes a preview of each matching branch of spec.source's git repository, and \
                 spec.source.oci is no git repository: give spec.previews to an EnvironmentSync of the git \
                 repository"
                    .into(),
            );
        }
        // Its namespaces are made with the account's client, of the controller's cluster.
        (Some(_), Fetching::Git(..)) if spec.kube_config.is_some() => {
            return invalid(
                Reason::InvalidSpec,
                "spec.previews with spec.kubeConfig is not built yet: previews apply to the controller's own cluster"
                    .into(),
            );
        }
        (Some(previews), Fetching::Git(..)) => {
            let namespace = kube::ResourceExt::namespace(sync).unwrap_or_default();
            match super::previews::settings(previews, &namespace) {
                Ok(previews) => Some(Box::new(previews)),
                Err(message) => return invalid(Reason::InvalidSpec, message),
            }
        }
    };
    Gate::Go(Settings {
        source,
        interval,
        retry_interval,
        timeout,
        prune: spec.prune.unwrap_or(true),
        wait: spec.wait,
        account: account.to_string(),
        promotion,
        image_updates,
        verify: spec.source.verify.as_ref().map(|v| (v.mode, v.secret_ref.name.clone())),
        cosign_keys: spec.source.oci.as_ref().and_then(|o| o.verify.as_ref()).map(|v| v.secret_ref.name.clone()),
        previews,
    })
}

/// What `source` says to fetch: a git repository at one revision, or an OCI artifact at a tag,
/// the highest tag of a semver range or a digest; what is wrong with it as a reason and a
/// message.
fn fetching(source: &weaver_api::environment_sync::Source) -> Result<Fetching, (Reason, String)> {
    match (&source.url, &source.reference, &source.oci) {
        (Some(_), Some(reference), None) => match reference.one() {
            Ok((kind, value)) => Ok(Fetching::Git(kind, value.to_string())),
            Err(message) => Err((Reason::InvalidReference, message)),
        },
        (None, None, Some(oci)) => {
            if source.secret_ref.is_some() || source.ca_secret_ref.is_some() || source.verify.is_some() {
                return Err((
                    Reason::InvalidSpec,
                    "spec.source.secretRef, caSecretRef and verify are for a git source: spec.source.oci is pulled \
                     with spec.chartCredentials, and its signature checked by spec.source.oci.verify"
                        .into(),
                ));
            }
            if let Some(verify) = &oci.verify
                && verify.provider != VerifyProvider::Cosign
            {
                return Err((
                    Reason::InvalidSpec,
                    format!(
                        "spec.source.oci.verify.provider is `{}`: only `cosign` signatures are checked",
                        verify.provider
                    ),
                ));
            }
            let given = [("tag", &oci.tag), ("semver", &oci.semver), ("digest", &oci.digest)];
            let given: Vec<(&str, &str)> =
                given.into_iter().filter_map(|(field, value)| Some((field, value.as_deref()?))).collect();
            let (field, value) = match given.as_slice() {
                [one] => *one,
                [] => {
                    return Err((
                        Reason::InvalidReference,
                        "spec.source.oci names no tag, semver or digest: give one".into(),
                    ));
                }
                several => {
                    let fields: Vec<&str> = several.iter().map(|(field, _)| *field).collect();
                    return Err((
                        Reason::InvalidReference,
                        format!("spec.source.oci names {}: give only one of tag, semver, digest", fields.join(" and ")),
                    ));
                }
            };
            if field == "semver"
                && let Err(why) = weaver_semver::Constraints::parse(value)
            {
                return Err((
                    Reason::InvalidReference,
                    format!("spec.source.oci.semver `{value}` is not a version range ({why})"),
                ));
            }
            // A range's tag is chosen at each pull: the artifact stands for its repository.
            let reference = if field == "semver" { "latest" } else { value };
            let semver = (field == "semver").then(|| value.to_string());
            Artifact::at(&oci.url, reference, oci.insecure, "spec.source.oci")
                .map(|artifact| Fetching::Oci(Wanted { artifact, semver }))
                .map_err(|err| (Reason::InvalidSourceUrl, err.to_string()))
        }
        _ => Err((
            Reason::InvalidSpec,
            "spec.source names no source or two: give url and ref (a git repository), or oci (an OCI artifact)".into(),
        )),
    }
}

/// What the reconcile does with the fetched revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Apply every selected environment at the revision (a manual approval may hold it).
    Apply,
    /// Everything is applied at this revision: put back what drifted (`correctDrift`).
    CorrectDrift,
    /// Everything is applied at this revision: only report what drifted.
    ReportDrift,
}

/// Applies when the revision, the spec or an earlier failure asks for it; an unchanged
/// commit that is applied everywhere writes nothing but drift corrections.
pub fn work(sync: &EnvironmentSync, commit: &str, selected: &[String]) -> Work {
    let status = sync.status.clone().unwrap_or_default();
    let applied_everywhere = selected.iter().all(|name| {
        status
            .environments
            .iter()
            .any(|env| &env.name == name && env.revision.as_deref() == Some(commit) && env.result.is_applied())
    });
    let in_sync = status.last_applied_revision.as_deref() == Some(commit)
        && status.last_applied_generation == sync.metadata.generation
        && applied_everywhere;
    match (in_sync, sync.spec.correct_drift) {
        (false, _) => Work::Apply,
        (true, true) => Work::CorrectDrift,
        (true, false) => Work::ReportDrift,
    }
}

/// What of `spec.windows` holds an apply back at `now`, as the status says it (a spec whose
/// windows cannot be read never gets here: [`gate`] refuses it).
pub fn hold(sync: &EnvironmentSync, now: jiff::Timestamp) -> Option<WindowHold> {
    let hold = Windows::parse(&sync.spec.windows).ok()?.hold(now)?;
    Some(WindowHold { reason: hold.reason, until: hold.until.map(|at| at.to_string()) })
}

/// Whether a plan of digest `digest` may be applied.
pub fn approved(sync: &EnvironmentSync, digest: &str) -> bool {
    match sync.spec.approval.unwrap_or_default() {
        Approval::Automatic => true,
        Approval::Manual => sync.spec.approved_plan.as_deref() == Some(digest),
    }
}

/// Who approved the plan of `digest` (the approved-by annotation) and when: the time the API
/// server recorded for the last write of `spec.approvedPlan`, which no client sets.
pub fn approval_of(sync: &EnvironmentSync, digest: &str) -> ApprovalRecord {
    let approved_by = sync.metadata.annotations.as_ref().and_then(|a| a.get(APPROVED_BY)).cloned().unwrap_or_default();
    let sets_plan = |fields: &serde_json::Value| !fields["f:spec"]["f:approvedPlan"].is_null();
    let approved_at = sync
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.fields_v1.as_ref().is_some_and(|fields| sets_plan(&fields.0)))
        .filter_map(|entry| entry.time.as_ref())
        .max_by_key(|time| time.0)
        .map(|time| time.0.to_string());
    ApprovalRecord { digest: digest.to_string(), approved_by, approved_at }
}

/// A dependency as the reconcile found it.
pub struct Dependency<'a> {
    /// `namespace/name`, for messages.
    pub name: String,
    /// None when it does not exist.
    pub sync: Option<&'a EnvironmentSync>,
}

/// The first dependency not Ready, or (with `commit`) Ready at another revision of the same
/// source, as a message; None when all are ready for `sync`.
pub fn waiting_for(sync: &EnvironmentSync, commit: Option<&str>, dependencies: &[Dependency]) -> Option<String> {
    dependencies.iter().find_map(|dependency| {
        let name = &dependency.name;
        let Some(other) = dependency.sync else {
            return Some(format!("dependency EnvironmentSync {name} does not exist"));
        };
        if !is_ready(other) {
            return Some(format!("dependency EnvironmentSync {name} is not Ready"));
        }
        let status = other.status.clone().unwrap_or_default();
        let commit = commit?;
        let same_source = other.spec.source.location() == sync.spec.source.location();
        if same_source && status.last_applied_revision.as_deref() != Some(commit) {
            let at = status.last_applied_revision.as_deref().map_or("no revision", short);
            return Some(format!(
                "dependency EnvironmentSync {name} is Ready at {at}, not yet at {} of the same source",
                short(commit)
            ));
        }
        None
    })
}

/// Ready for the current generation of its spec.
fn is_ready(sync: &EnvironmentSync) -> bool {
    let status = sync.status.as_ref();
    status.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        && status.and_then(|s| s.observed_generation) == sync.metadata.generation
}

/// The EnvironmentSyncs waiting for `changed` (their `dependsOn` names it, their Ready reason is
/// `Reason::DependencyNotReady`) once `changed` is Ready: they look again now, not at their next
/// retry, so a chain of them applies one right after another. `syncs` (all of them) is read only
/// when `changed` is Ready: most changes a watch sees are not that.
pub fn woken_by(
    changed: &EnvironmentSync,
    syncs: impl FnOnce() -> Vec<std::sync::Arc<EnvironmentSync>>,
) -> Vec<std::sync::Arc<EnvironmentSync>> {
    if !is_ready(changed) {
        return Vec::new();
    }
    let (namespace, name) = (changed.metadata.namespace.as_deref(), changed.metadata.name.as_deref());
    let waiting_for_it = |sync: &std::sync::Arc<EnvironmentSync>| {
        let own = sync.metadata.namespace.as_deref();
        let waiting = sync.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| c.type_ == "Ready" && Reason::DependencyNotReady == c.reason.as_str())
        });
        waiting
            && sync
                .spec
                .depends_on
                .iter()
                .any(|d| d.namespace.as_deref().or(own) == namespace && Some(d.name.as_str()) == name)
    };
    syncs().into_iter().filter(waiting_for_it).collect()
}

/// A loop of `dependsOn` through `sync` (`team/a → team/b → team/a`), following the
/// EnvironmentSyncs `others` finds by namespace and name; None without one.
pub fn cycle(
    sync: &EnvironmentSync,
    others: impl Fn(&str, &str) -> Option<std::sync::Arc<EnvironmentSync>>,
) -> Option<String> {
    let key = |s: &EnvironmentSync| {
        (s.metadata.namespace.clone().unwrap_or_default(), s.metadata.name.clone().unwrap_or_default())
    };
    let start = key(sync);
    let edges = |s: &EnvironmentSync| -> Vec<(String, String)> {
        let namespace = s.metadata.namespace.clone().unwrap_or_default();
        s.spec
            .depends_on
            .iter()
            .map(|d| (d.namespace.clone().unwrap_or_else(|| namespace.clone()), d.name.clone()))
            .collect()
    };
    // Depth first, each EnvironmentSync once: a path back to `sync` is the loop.
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Vec<(String, String)>> = edges(sync).into_iter().map(|next| vec![start.clone(), next]).collect();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path has a start").clone();
        if last == start {
            let names: Vec<String> = path.iter().map(|(ns, name)| format!("{ns}/{name}")).collect();
            return Some(names.join(" → "));
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        if let Some(next) = others(&last.0, &last.1) {
            for edge in edges(&next) {
                let mut longer = path.clone();
                longer.push(edge);
                stack.push(longer);
            }
        }
    }
    None
}

/// `history` with `entry` first, at most [`HISTORY`] entries.
pub fn with_history(status: &EnvironmentSyncStatus, entry: HistoryEntry) -> Vec<HistoryEntry> {
    std::iter::once(entry).chain(status.history.iter().cloned()).take(HISTORY).collect()
}

/// Whether the `reconcile-requested-at` annotation asks for a reconcile not handled yet.
pub fn requested(sync: &EnvironmentSync) -> Option<String> {
    let asked = sync.metadata.annotations.as_ref()?.get(RECONCILE_REQUESTED_AT)?;
    let handled = sync.status.as_ref().and_then(|s| s.last_handled_reconcile_at.as_ref());
    (handled != Some(asked)).then(|| asked.clone())
}

/// The digest of one environment's plan: each object it changes, with its release, action and
/// desired state, a Secret's values replaced by their HMAC under `key` (the decryption
/// identities), so that the digest in the status cannot confirm a guessed value.
pub fn environment_digest(environment: &str, plan: &weaver_plan::plan::Plan, key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for object in plan.objects.iter().filter(|o| o.action != weaver_plan::plan::Action::Unchanged) {
        let desired = object.desired.as_ref().map(|d| keyed_secret_values(d, key));
        let part = serde_json::json!([
            environment,
            object.release,
            object.key.to_string(),
            format!("{:?}", object.action),
            desired
        ]);
        digest.update(part.to_string().as_bytes());
    }
    hex::encode(digest.finalize())
}

/// The digest an approval names (`spec.approvedPlan`): the commit's and its environments'
/// plans', in the order the EnvironmentSync selects them.
pub fn plan_digest<'a>(commit: &str, environments: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(commit.as_bytes());
    for environment in environments {
        digest.update(environment.as_bytes());
    }
    format!("sha256:{}", hex::encode(digest.finalize()))
}

/// `desired` with each value of a Secret's `data` and `stringData` replaced by its HMAC under
/// `key`.
fn keyed_secret_values(desired: &serde_json::Value, key: &[u8]) -> serde_json::Value {
    let mut object = desired.clone();
    if weaver_plan::diff::is_secret(&object) {
        let mac = weaver_secrets::hmac::HmacSha256::new(key);
        for field in ["data", "stringData"] {
            if let Some(values) = object.get_mut(field).and_then(serde_json::Value::as_object_mut) {
                for value in values.values_mut() {
                    *value = serde_json::Value::String(hex::encode(mac.mac(value.to_string().as_bytes())));
                }
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::api::{EnvironmentStatus, EnvironmentSyncSpec, GitReference, Source};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn sync(spec: serde_json::Value) -> EnvironmentSync {
        let mut base = serde_json::json!({
            "source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}},
            "environments": ["dev"],
            "serviceAccountName": "deployer",
        });
        for (key, value) in spec.as_object().unwrap() {
            base[key] = value.clone();
        }
        let spec: EnvironmentSyncSpec = serde_json::from_value(base).unwrap();
        let mut sync = EnvironmentSync::new("shop", spec);
        sync.metadata.namespace = Some("team".into());
        sync.metadata.generation = Some(1);
        sync
    }

    fn settings(sync: &EnvironmentSync) -> Settings {
        match gate(sync, None) {
            Gate::Go(settings) => settings,
            other => panic!("expected Go, got {other:?}"),
        }
    }

    fn ready(status: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: "Applied".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba98";

    #[test]
    fn a_failure_mended_elsewhere_is_retried_soon_then_less_often_up_to_the_retry_interval() {
        let settings = settings(&sync(serde_json::json!({})));
        let after = |reason, seconds| retry_after(&settings, reason, Duration::from_secs(seconds)).as_secs();
        let waits: Vec<u64> = [0, 5, 10, 20, 40, 80, 160, 320].map(|s| after(&Reason::SecretUnreadable, s)).to_vec();
        assert_eq!(waits, [5, 5, 10, 20, 40, 80, 160, 300]);
        assert_eq!(after(&Reason::ServiceAccountNotFound, 0), 5);
        // A fetch or an apply that failed waits for the retryInterval, as before.
        assert_eq!(after(&Reason::GitUnreachable, 0), 300);
        assert_eq!(after(&Reason::ApplyFailed, 10_000), 300);
        let short = settings_of(serde_json::json!({"retryInterval": "3s"}));
        assert_eq!(retry_after(&short, &Reason::SecretNotFound, Duration::ZERO), Duration::from_secs(3));
    }

    #[test]
    fn defaults_follow_flux() {
        let settings = settings(&sync(serde_json::json!({})));
        assert_eq!(settings.interval, DEFAULT_INTERVAL);
        assert_eq!(settings.retry_interval, DEFAULT_INTERVAL);
        assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
        assert!(settings.prune);
        assert_eq!(settings.source, Fetching::Git(RefKind::Branch, "main".to_string()));
        let settings = settings_of(serde_json::json!({"interval": "1m30s", "retryInterval": "10s", "prune": false}));
        assert_eq!(settings.interval, Duration::from_secs(90));
        assert_eq!(settings.retry_interval, Duration::from_secs(10));
        assert!(!settings.prune);
    }

    fn settings_of(spec: serde_json::Value) -> Settings {
        settings(&sync(spec))
    }

    #[test]
    fn a_spec_that_cannot_be_acted_on_says_why() {
        let reason = |spec| match gate(&sync(spec), None) {
            Gate::Invalid { reason, message } => (reason, message),
            other => panic!("expected Invalid, got {other:?}"),
        };
        let (why, message) = reason(serde_json::json!({"serviceAccountName": null}));
        assert_eq!(why, "ServiceAccountRequired");
        assert!(message.contains("spec.serviceAccountName"), "{message}");
        let (why, _) =
            reason(serde_json::json!({"source": {"url": "https://x/y.git", "ref": {"branch": "a", "tag": "b"}}}));
        assert_eq!(why, "InvalidReference");
        let (why, _) = reason(serde_json::json!({"source": {"url": "https://x/y.git", "ref": {}}}));
        assert_eq!(why, "InvalidReference");
        let (why, message) = reason(serde_json::json!({"interval": "soon"}));
        assert_eq!(why, "InvalidSpec");
        assert!(message.contains("spec.interval: `soon` is not a duration"), "{message}");
        let (why, _) = reason(serde_json::json!({"environments": []}));
        assert_eq!(why, "NoEnvironments");
        // The controller's default account serves an EnvironmentSync without one.
        let without = sync(serde_json::json!({"serviceAccountName": null}));
        assert!(matches!(gate(&without, Some("weaver-default")), Gate::Go(s) if s.account == "weaver-default"));
        assert_eq!(gate(&sync(serde_json::json!({"suspend": true})), None), Gate::Suspended);
    }

    #[test]
    fn an_oci_source_is_its_artifact_at_a_tag_semver_or_digest_and_nothing_of_git_goes_with_it() {
        let oci = |source: serde_json::Value| sync(serde_json::json!({"source": source}));
        let tagged =
            settings(&oci(serde_json::json!({"oci": {"url": "oci://registry.example/shop/deploy", "tag": "main"}})));
        let Fetching::Oci(wanted) = tagged.source else { panic!("{tagged:?}") };
        assert_eq!(wanted.to_string(), "registry.example/shop/deploy:main");
        assert!(!wanted.artifact.plain_http);
        assert_eq!((wanted.semver, tagged.cosign_keys), (None, None));
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned =
            oci(serde_json::json!({"oci": {"url": "oci://127.0.0.1:5000/shop", "digest": digest, "insecure": true}}));
        let Fetching::Oci(wanted) = settings(&pinned).source else { panic!() };
        assert_eq!(wanted.to_string(), format!("127.0.0.1:5000/shop@{digest}"));
        assert!(wanted.artifact.plain_http);
        // A range: its repository, the tag chosen at each pull; verified with the Secret's keys.
        let ranged =
            settings(&oci(serde_json::json!({"oci": {"url": "oci://registry.example/shop", "semver": ">=1 <2",
            "verify": {"provider": "cosign", "secretRef": {"name": "signers"}}}})));
        let Fetching::Oci(wanted) = &ranged.source else { panic!() };
        assert_eq!(wanted.semver.as_deref(), Some(">=1 <2"));
        assert_eq!(wanted.to_string(), "registry.example/shop (semver `>=1 <2`)");
        assert_eq!(ranged.cosign_keys.as_deref(), Some("signers"));
        // The provider defaults to cosign, as Flux's does.
        let unnamed = settings(&oci(serde_json::json!({"oci": {"url": "oci://registry.example/shop", "tag": "main",
            "verify": {"secretRef": {"name": "keys"}}}})));
        assert_eq!(unnamed.cosign_keys.as_deref(), Some("keys"));
        let refused = |spec: serde_json::Value| match gate(&sync(spec), None) {
            Gate::Invalid { reason, message } => (reason, message),
            other => panic!("expected Invalid, got {other:?}"),
        };
        let at = serde_json::json!({"url": "oci://registry.example/shop", "tag": "main"});
        for (spec, reason, says) in [
            (
                serde_json::json!({"source": {"oci": at, "url": "https://x/y.git", "ref": {"branch": "main"}}}),
                "InvalidSpec",
                "no source or two",
            ),
            (serde_json::json!({"source": {}}), "InvalidSpec", "no source or two"),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example/shop"}}}),
                "InvalidReference",
                "spec.source.oci names no tag, semver or digest: give one",
            ),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example/shop", "tag": "a", "digest": digest}}}),
                "InvalidReference",
                "spec.source.oci names tag and digest: give only one of tag, semver, digest",
            ),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example/shop", "tag": "a", "semver": "1"}}}),
                "InvalidReference",
                "spec.source.oci names tag and semver: give only one",
            ),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example/shop", "semver": ">=1", "digest": digest}}}),
                "InvalidReference",
                "names semver and digest",
            ),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example/shop", "semver": ">= one"}}}),
                "InvalidReference",
                "spec.source.oci.semver `>= one` is not a version range",
            ),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example/shop", "tag": "a",
                    "verify": {"provider": "notation", "secretRef": {"name": "keys"}}}}}),
                "InvalidSpec",
                "spec.source.oci.verify.provider is `notation`: only `cosign` signatures are checked",
            ),
            (
                serde_json::json!({"source": {"oci": {"url": "oci://registry.example", "tag": "a"}}}),
                "InvalidSourceUrl",
                "names no repository",
            ),
            (
                serde_json::json!({"source": {"oci": at, "secretRef": {"name": "git"}}}),
                "InvalidSpec",
                "are for a git source",
            ),
            (
                serde_json::json!({"source": {"oci": at, "verify": {"secretRef": {"name": "keys"}}}}),
                "InvalidSpec",
                "its signature checked by spec.source.oci.verify",
            ),
            (
                serde_json::json!({"source": {"oci": at}, "promotion": {"author": {"name": "w", "email": "w@x"}}}),
                "InvalidSpec",
                "spec.promotion commits to spec.source's git repository",
            ),
            (
                serde_json::json!({"source": {"oci": at}, "previews": {"branches": "preview/*", "environment": "dev"}}),
                "InvalidSpec",
                "spec.source.oci is no git repository: give spec.previews to an EnvironmentSync of the git",
            ),
        ] {
            let (why, message) = refused(spec.clone());
            assert_eq!(why, reason, "{spec}: {message}");
            assert!(message.contains(says), "{spec}: {message}");
        }
    }

    #[test]
    fn previews_of_a_git_source_are_checked_with_the_syncs_namespace_as_their_default() {
        let previews = serde_json::json!({"branches": "preview/*", "environment": "dev"});
        let checked = settings_of(serde_json::json!({"previews": previews})).previews.expect("previews");
        assert_eq!((checked.environment.as_str(), checked.max, checked.expire_after), ("dev", 10, None));
        let now = jiff::Timestamp::UNIX_EPOCH;
        let branch = crate::gitops::previews::Branch {
            name: "preview/a".into(),
            commit: COMMIT.into(),
            time: now,
            pull_request: None,
            fork: false,
        };
        assert_eq!(
            checked.previews(&[branch], (&Default::default(), &Default::default()), now, ("team", "shop"))[0].namespace,
            "team-a"
        );
        let refused = gate(
            &sync(serde_json::json!({"previews": {"branches": "p/*", "environment": "dev", "expireAfter": "soon"}})),
            None,
        );
        assert!(
            matches!(&refused, Gate::Invalid { reason: Reason::InvalidSpec, message } if message.starts_with("spec.previews.expireAfter:")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_promotion_pushes_to_the_tracked_branch_or_forces_a_branch_of_its_own_when_due() {
        let author = serde_json::json!({"name": "Bot", "email": "bot@example.org"});
        let tracked =
            settings_of(serde_json::json!({"interval": "5m", "promotion": {"interval": "1m", "author": author}}));
        let promotion = tracked.promotion.clone().unwrap();
        assert_eq!((promotion.branch.as_str(), promotion.force), ("main", false));
        assert_eq!(promotion.author, ("Bot".to_string(), "bot@example.org".to_string()));
        assert_eq!(tracked.next(), Duration::from_secs(60), "woken for the promotion");
        let own = settings_of(
            serde_json::json!({"promotion": {"push": {"branch": "weaver/promote-prod"}, "author": author}}),
        );
        let promotion = own.promotion.clone().unwrap();
        assert_eq!((promotion.branch.as_str(), promotion.force), ("weaver/promote-prod", true));
        assert_eq!((promotion.interval, own.next()), (DEFAULT_PROMOTION_INTERVAL, DEFAULT_INTERVAL));
        let at_tag = sync(serde_json::json!({"source": {"url": "https://x/y.git", "ref": {"tag": "v1"}},
                                             "promotion": {"author": author}}));
        assert!(
            matches!(gate(&at_tag, None), Gate::Invalid { reason: Reason::InvalidSpec, message } if message.contains("push.branch"))
        );

        // What a verified EnvironmentSync pushes is signed, or the next reader refuses it.
        let source = serde_json::json!({"url": "https://x/y.git", "ref": {"branch": "main"},
                                        "verify": {"mode": "all", "secretRef": {"name": "signers"}}});
        let unsigned = sync(serde_json::json!({"source": source, "imageUpdates": {"author": author}}));
        let Gate::Invalid { reason: Reason::InvalidSpec, message } = gate(&unsigned, None) else { panic!("refused") };
        assert_eq!(
            message,
            "spec.source.verify is set, so what spec.imageUpdates pushes must be signed: name the key's Secret in \
             spec.imageUpdates.signingKey.secretRef"
        );
        let key = serde_json::json!({"secretRef": {"name": "bot-key"}});
        let signed =
            settings_of(serde_json::json!({"source": source, "promotion": {"author": author, "signingKey": key}}));
        assert_eq!(signed.promotion.unwrap().signing_key.as_deref(), Some("bot-key"));
        assert_eq!(signed.verify, Some((crate::gitops::api::VerifyMode::All, "signers".to_string())));

        let mut s = sync(serde_json::json!({}));
        let now: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        assert!(promotion_due(&s, Duration::from_secs(60), now), "never tried");
        s.status = Some(EnvironmentSyncStatus {
            promotion: Some(crate::gitops::api::PromotionStatus {
                push: crate::gitops::api::PushStatus {
                    last_attempt_time: "2026-11-26T09:59:30Z".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(!promotion_due(&s, Duration::from_secs(60), now));
        assert!(promotion_due(&s, Duration::from_secs(30), now));
    }

    fn applied_at(sync: &mut EnvironmentSync, commit: &str, envs: &[&str], result: &str) {
        sync.status = Some(EnvironmentSyncStatus {
            observed_generation: Some(1),
            last_applied_revision: Some(commit.into()),
            last_applied_generation: Some(1),
            environments: envs
                .iter()
                .map(|name| EnvironmentStatus {
                    name: name.to_string(),
                    revision: Some(commit.into()),
                    result: result.into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }

    #[test]
    fn an_unchanged_commit_applied_everywhere_only_looks_at_drift() {
        let selected = vec!["dev".to_string()];
        let mut s = sync(serde_json::json!({}));
        assert_eq!(work(&s, COMMIT, &selected), Work::Apply, "never applied");
        applied_at(&mut s, COMMIT, &["dev"], "Applied");
        assert_eq!(work(&s, COMMIT, &selected), Work::ReportDrift);
        assert_eq!(work(&s, OTHER, &selected), Work::Apply, "a new commit");
        assert_eq!(work(&s, COMMIT, &["dev".into(), "prod".into()]), Work::Apply, "a newly selected environment");
        s.metadata.generation = Some(2);
        assert_eq!(work(&s, COMMIT, &selected), Work::Apply, "a changed spec");
        // Seen at generation 2 (a reconcile that failed or waited), but not applied with it.
        s.status.as_mut().unwrap().observed_generation = Some(2);
        assert_eq!(work(&s, COMMIT, &selected), Work::Apply, "a changed spec not applied yet");
        let mut failed = sync(serde_json::json!({}));
        applied_at(&mut failed, COMMIT, &["dev"], "Failed");
        assert_eq!(work(&failed, COMMIT, &selected), Work::Apply, "an earlier failure");
        let mut healing = sync(serde_json::json!({"correctDrift": true}));
        applied_at(&mut healing, COMMIT, &["dev"], "Unchanged");
        assert_eq!(work(&healing, COMMIT, &selected), Work::CorrectDrift);
    }

    #[test]
    fn a_manual_approval_holds_every_plan_but_the_approved_one() {
        assert!(approved(&sync(serde_json::json!({})), "sha256:a"));
        let manual = sync(serde_json::json!({"approval": "Manual"}));
        assert!(!approved(&manual, "sha256:a"));
        let approved_a = sync(serde_json::json!({"approval": "Manual", "approvedPlan": "sha256:a"}));
        assert!(approved(&approved_a, "sha256:a"));
        assert!(!approved(&approved_a, "sha256:b"), "a new plan needs a new approval");
    }

    #[test]
    fn dependencies_must_be_ready_at_the_same_revision_of_a_shared_source() {
        let me = sync(serde_json::json!({}));
        let mut other = sync(serde_json::json!({}));
        fn dependency(sync: Option<&EnvironmentSync>) -> Vec<Dependency<'_>> {
            vec![Dependency { name: "team/base".into(), sync }]
        }
        let message = waiting_for(&me, Some(COMMIT), &dependency(None)).unwrap();
        assert!(message.contains("does not exist"), "{message}");
        assert!(waiting_for(&me, Some(COMMIT), &dependency(Some(&other))).unwrap().contains("is not Ready"));
        applied_at(&mut other, OTHER, &["base"], "Applied");
        other.status.as_mut().unwrap().conditions.push(ready("True"));
        let message = waiting_for(&me, Some(COMMIT), &dependency(Some(&other))).unwrap();
        assert!(message.contains("not yet at 0123456789ab"), "{message}");
        applied_at(&mut other, COMMIT, &["base"], "Applied");
        other.status.as_mut().unwrap().conditions.push(ready("True"));
        assert_eq!(waiting_for(&me, Some(COMMIT), &dependency(Some(&other))), None);
        // Another source's revision is not compared.
        let mut elsewhere = sync(serde_json::json!({}));
        elsewhere.spec.source = Source {
            url: Some("https://git.example.org/base.git".into()),
            reference: Some(GitReference::default()),
            ..me.spec.source.clone()
        };
        applied_at(&mut elsewhere, OTHER, &["base"], "Applied");
        elsewhere.status.as_mut().unwrap().conditions.push(ready("True"));
        assert_eq!(waiting_for(&me, Some(COMMIT), &dependency(Some(&elsewhere))), None);
        // Ready for an older generation of its spec is not ready.
        elsewhere.metadata.generation = Some(2);
        assert!(waiting_for(&me, Some(COMMIT), &dependency(Some(&elsewhere))).is_some());
    }

    #[test]
    fn a_dependency_turning_ready_wakes_only_those_waiting_for_it() {
        let named = |name: &str, namespace: &str, depends: serde_json::Value, reason: &str| {
            let mut s = sync(serde_json::json!({"dependsOn": depends}));
            s.metadata.name = Some(name.into());
            s.metadata.namespace = Some(namespace.into());
            applied_at(&mut s, COMMIT, &["dev"], "Applied");
            s.status.as_mut().unwrap().conditions.push(Condition { reason: reason.into(), ..ready("False") });
            std::sync::Arc::new(s)
        };
        let waiting = named("app", "team", serde_json::json!([{"name": "base"}]), Reason::DependencyNotReady.as_str());
        let across = named(
            "web",
            "other",
            serde_json::json!([{"name": "base", "namespace": "team"}]),
            Reason::DependencyNotReady.as_str(),
        );
        let failed = named("api", "team", serde_json::json!([{"name": "base"}]), "ApplyFailed");
        let elsewhere =
            named("cron", "other", serde_json::json!([{"name": "base"}]), Reason::DependencyNotReady.as_str());
        let unrelated =
            named("docs", "team", serde_json::json!([{"name": "wiki"}]), Reason::DependencyNotReady.as_str());
        let syncs = [waiting, across, failed, elsewhere, unrelated];
        let mut base = sync(serde_json::json!({}));
        base.metadata.name = Some("base".into());
        applied_at(&mut base, COMMIT, &["platform"], "Applied");
        let woken = |base: &EnvironmentSync| -> Vec<String> {
            woken_by(base, || syncs.to_vec())
                .iter()
                .map(|s| format!("{}/{}", s.metadata.namespace.as_ref().unwrap(), s.metadata.name.as_ref().unwrap()))
                .collect()
        };
        assert!(woken(&base).is_empty(), "not Ready yet: nothing to look at again");
        assert!(woken_by(&base, || panic!("the syncs read for a change that wakes nobody")).is_empty());
        base.status.as_mut().unwrap().conditions.push(ready("True"));
        assert_eq!(woken(&base), ["team/app", "other/web"]);
        // Ready for an older generation of its spec is not ready.
        base.metadata.generation = Some(2);
        assert!(woken(&base).is_empty());
    }

    #[test]
    fn a_loop_of_dependencies_is_found_and_a_chain_is_not() {
        let named = |name: &str, depends: &[&str]| {
            let mut s = sync(
                serde_json::json!({"dependsOn": depends.iter().map(|d| serde_json::json!({"name": d})).collect::<Vec<_>>()}),
            );
            s.metadata.name = Some(name.into());
            std::sync::Arc::new(s)
        };
        let all = [named("a", &["b"]), named("b", &["c"]), named("c", &["a"]), named("d", &["b"])];
        let find = |ns: &str, name: &str| {
            all.iter().find(|s| ns == "team" && s.metadata.name.as_deref() == Some(name)).cloned()
        };
        assert_eq!(cycle(&all[0], find).as_deref(), Some("team/a → team/b → team/c → team/a"));
        // d depends on the loop but is not in it: its dependencies say so themselves.
        assert_eq!(cycle(&all[3], find), None);
        let alone = named("e", &["e"]);
        assert_eq!(cycle(&alone, find).as_deref(), Some("team/e → team/e"));
        let chain = [named("x", &["y"]), named("y", &[])];
        assert_eq!(
            cycle(&chain[0], |_: &str, name: &str| chain
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
                .cloned()),
            None
        );
    }

    #[test]
    fn history_keeps_the_last_five_newest_first() {
        let mut status = EnvironmentSyncStatus::default();
        for n in 0..7 {
            let entry = HistoryEntry { revision: n.to_string(), ..Default::default() };
            status.history = with_history(&status, entry);
        }
        let revisions: Vec<&str> = status.history.iter().map(|h| h.revision.as_str()).collect();
        assert_eq!(revisions, ["6", "5", "4", "3", "2"]);
    }

    #[test]
    fn a_reconcile_request_is_handled_once() {
        let mut s = sync(serde_json::json!({}));
        assert_eq!(requested(&s), None);
        s.metadata.annotations = Some([(RECONCILE_REQUESTED_AT.to_string(), "t1".to_string())].into());
        assert_eq!(requested(&s).as_deref(), Some("t1"));
        s.status = Some(EnvironmentSyncStatus { last_handled_reconcile_at: Some("t1".into()), ..Default::default() });
        assert_eq!(requested(&s), None);
    }
}
