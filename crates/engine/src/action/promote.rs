//! Promotion: each selected target environment takes, from its `promotion.from` environment,
//! what the pins of its `promotion:` name, as that source LAST APPLIED them (its release
//! records in the cluster, not its files), once the gates pass: the source's pinned releases
//! healthy by `weaver status`'s rules and for `soakTime` since they last changed, not drifted,
//! their records signed by the applies that wrote them, and the `checks` true of the source's
//! status. What is taken goes to the target's promotions file (`weaver_project::promotion`) in
//! a commit on a new branch, built from HEAD's commit in the object database: the repository
//! is read at HEAD and the working tree is never read or written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::drift::{DriftOptions, drift};
use super::fleet::{EnvironmentSelection, select_environments};
use super::plan::{Against, PlanOptions, Planned, plan};
use super::removed::PruneReleases;
use super::render::{IfEmpty, RenderOptions, Selection};
use super::status::status_with_records;
use super::{Context, Keys, open_project};
use weaver_cluster::{ConnectOptions, SharedServers};
use weaver_core::error::{Error, Result};
use weaver_core::limits::RenderLimits;
use weaver_git::GitRepo;
use weaver_plan::release::drift::{Report as DriftReport, State};
use weaver_plan::release::record::{Records, Status};
use weaver_plan::release::status::{Health, Report as StatusReport};
use weaver_project::environment::load_environment_promoted;
use weaver_project::promotion::{Pinned, Promoted, PromotedRelease, promoted_path, set_value_at, value_at};
use weaver_project::{Environment, Project};
use weaver_secrets::record_key::{RECORD_KEY_VARIABLE, RecordKey, Verified};

/// The revision promotions read the repository at, and branch from.
const HEAD: &str = "HEAD";

#[derive(Debug, Clone)]
pub struct PromoteOptions {
    /// The target environments (`--to`, `--env-selector`, `--wave`).
    pub targets: EnvironmentSelection,
    /// The key the source's records are checked with (`WEAVER_RECORD_KEY_FILE`'s).
    pub record_key: Option<RecordKey>,
    /// Where the targets' plans read and the promotion is committed; its `rev`, HEAD's when
    /// None (the CLI's), else the controller's fetched commit, in its mirror.
    pub proposal: Proposal,
}

/// How new pins (a promotion's, an image update's) are proposed: planned against each
/// environment's cluster, and committed on a new branch.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub repo: PathBuf,
    pub connect: ConnectOptions,
    pub concurrency: usize,
    /// The age identities the plans render with.
    pub keys: Keys,
    /// Check and plan, write nothing.
    pub dry_run: bool,
    /// The new branch's name; one made of the environments and the change's digest when None.
    pub branch: Option<String>,
    /// The commit read and branched from.
    pub rev: Option<String>,
    /// Who commits (name, email): the repository's user.name and user.email when None.
    pub author: Option<(String, String)>,
    /// The key the commit is signed with (the controller's, when its environments verify).
    pub signing_key: Option<Arc<weaver_verify::SigningKey>>,
    /// Where remote charts come from: this machine's cache (the CLI's), or the controller's,
    /// which pulls them.
    pub charts: weaver_source::charts::Archives,
    /// The bounds of each plan's render (the controller's, for a tenant's repository); its
    /// time counted from that render's start.
    pub limits: RenderLimits,
}

impl PromoteOptions {
    fn rev(&self) -> &str {
        self.proposal.rev.as_deref().unwrap_or(HEAD)
    }
}

/// What a promotion found and did.
pub struct Promotions {
    pub targets: Vec<TargetPromotion>,
    /// The branch and commit written; None for a dry run, a refusal or nothing to promote.
    pub commit: Option<(String, String)>,
    pub dry_run: bool,
}

/// One target environment's promotion.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPromotion {
    pub environment: String,
    pub from: String,
    pub gates: Vec<Gate>,
    /// The pins that change, in the order `pins:` lists them; empty when the target has what
    /// the source applied.
    pub changes: Vec<PinChange>,
    /// The file the pins are written to.
    pub file: String,
    /// The target's plan with the change (against its cluster); None when nothing changes or
    /// a gate failed.
    #[serde(skip)]
    pub plan: Option<Planned>,
    #[serde(skip)]
    promoted: Promoted,
}

impl TargetPromotion {
    /// Each gate that failed, in a line: `prod from staging: gate `soak` failed: evidence`.
    pub fn refusals(&self) -> impl Iterator<Item = String> + '_ {
        self.gates.iter().filter(|g| !g.passed).map(|gate| {
            let expression = gate.expression.as_deref().map(|e| format!(" `{e}`")).unwrap_or_default();
            let evidence = gate.evidence.join("; ");
            format!("{} from {}: gate `{}`{expression} failed: {evidence}", self.environment, self.from, gate.gate)
        })
    }

    pub fn passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }
}

/// Its name (`no-drift`) is what `-o json`, the body and the errors say: [`GateKind::name`],
/// the one mapping, which serialization and parsing go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// The pinned releases' last applies deployed and their objects healthy now.
    Healthy,
    /// No change for `soakTime`: not applied since, no condition moved since.
    Soak,
    /// Their live objects as their records say.
    NoDrift,
    /// Their records signed with the record key.
    Signed,
    /// A `checks` expression true of the source's status.
    Check,
}

impl GateKind {
    pub fn name(self) -> &'static str {
        match self {
            GateKind::Healthy => "healthy",
            GateKind::Soak => "soak",
            GateKind::NoDrift => "no-drift",
            GateKind::Signed => "signed",
            GateKind::Check => "check",
        }
    }
}

impl std::fmt::Display for GateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for GateKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One gate, with what it saw.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub gate: GateKind,
    pub passed: bool,
    /// The `checks` expression, for a check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    pub evidence: Vec<String>,
}

/// A pin the promotion changes in the target.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PinChange {
    pub release: String,
    /// `chart`, `image` or `values`.
    pub pin: &'static str,
    /// The image repository or the values path; empty for a chart.
    pub name: String,
    /// What the target has now (as its files set it); null when they set nothing.
    pub from: Option<Value>,
    pub to: Value,
    /// The source's revision it comes from.
    pub revision: u32,
}

/// Checks the gates of every selected target and, where all pass and something changes,
/// writes the changes as one commit on a new branch (unless a dry run). Nothing is written when
/// any target's gate fails.
pub async fn promote(options: &PromoteOptions, cx: Context<'_>) -> Result<Promotions> {
    let proposal = &options.proposal;
    if proposal.rev.is_none() && weaver_git::provenance(&proposal.repo, None)?.is_some_and(|p| p.dirty) {
        (cx.on)(super::Progress::Warning(
            "the working tree has uncommitted changes: weaver promote reads and branches from HEAD's commit, without them"
                .to_string(),
        ));
    }
    let bound = &proposal.limits.max_values_bytes;
    let (repo, rev) = (proposal.repo.clone(), options.rev().to_string());
    let targets = EnvironmentSelection { max_file_bytes: bound.clone(), ..options.targets.clone() };
    let (project, targets) = super::blocking(move || -> Result<_> {
        Ok((open_project(&repo, Some(&rev))?, select_environments(&repo, Some(&rev), &targets)?))
    })
    .await?;
    let project = project.bounded(bound.as_ref());
    // The reads of the sources and the plans of the targets share a client and discovery per
    // server and context, as a fleet's environments do.
    let servers = SharedServers::new(proposal.concurrency)?;
    let mut results = Vec::new();
    for target in &targets {
        results.push(promote_one(&project, target, options, &servers, cx).await?);
    }
    let refused = results.iter().any(|t| !t.passed());
    let changed: Vec<&TargetPromotion> = results.iter().filter(|t| !t.changes.is_empty()).collect();
    let commit = match (proposal.dry_run || refused, changed.is_empty()) {
        (false, false) => Some(write(options, &changed).await?),
        _ => None,
    };
    Ok(Promotions { targets: results, commit, dry_run: proposal.dry_run })
}

async fn promote_one(
    project: &Project,
    target: &Environment,
    options: &PromoteOptions,
    servers: &SharedServers,
    cx: Context<'_>,
) -> Result<TargetPromotion> {
    let Some(promotion) = &target.promotion else {
        let file = target.files.first().map(weaver_core::error::Location::file);
        let err = format!("environment `{}` has no `promotion:`", target.name);
        return Err(file.map_or_else(|| Error::new(&err), |at| Error::at(at, &err)).with_help(
            "say what it takes from which environment: promotion: { from: staging, pins: [{ release: web, values: image.tag }] }",
        ));
    };
    if promotion.from == target.name {
        return Err(Error::at(promotion.at.clone(), format!("environment `{}` promotes from itself", target.name)));
    }
    // The source's releases the pins name: what is promoted is all that is judged.
    let pinned: Vec<String> =
        promotion.pins.iter().map(|p| p.release.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let source =
        Arc::new(project.environment(&promotion.from).map_err(|e| {
            e.with_help(format!("`promotion.from` of environment `{}` ({})", target.name, promotion.at))
        })?);
    if let Some(missing) = pinned.iter().find(|name| source.release(name).is_none()) {
        return Err(Error::at(
            promotion.at.clone(),
            format!("a pin names release `{missing}`, which source environment `{}` lacks", source.name),
        ));
    }
    let selection = Selection {
        env: source.name.clone(),
        releases: pinned.clone(),
        selectors: Vec::new(),
        changed_since: None,
        repo: options.proposal.repo.clone(),
        rev: Some(options.rev().to_string()),
        loaded: Some(source.clone()),
        project: None,
        revision: None,
    };
    let read = DriftOptions {
        selection,
        connect: options.proposal.connect.clone(),
        concurrency: options.proposal.concurrency,
        servers: Some(servers.clone()),
        keys: options.proposal.keys.clone(),
        notify: false,
    };
    let (status, records) = status_with_records(&read, cx.on).await?;
    let drifted = drift(&read, cx).await?;
    let now = jiff::Timestamp::now();
    let mut gates = vec![
        healthy_gate(&status, &records),
        soak_gate(&status, &records, promotion.soak_time, now),
        drift_gate(&drifted),
        signed_gate(&pinned, &records, options.record_key.as_ref()),
    ];
    let document = serde_json::to_value(crate::report::json::StatusReport::new(&status))
        .map_err(|e| Error::new(format!("cannot encode the source's status: {e}")))?;
    let variables = [("status".to_string(), document)];
    for check in &promotion.checks {
        let result = check.evaluate_with(variables.iter().map(|(k, v)| (k, v)));
        gates.push(Gate {
            gate: GateKind::Check,
            passed: result == Ok(true),
            expression: Some(check.text.clone()),
            evidence: vec![match result {
                Ok(true) => format!("true of {}'s status ({})", source.name, check.at),
                Ok(false) => format!("false of {}'s status ({})", source.name, check.at),
                Err(why) => why,
            }],
        });
    }
    let mut result = TargetPromotion {
        environment: target.name.clone(),
        from: source.name.clone(),
        gates,
        changes: Vec::new(),
        file: promoted_path(&target.name).display().to_string(),
        plan: None,
        promoted: promotion.promoted.clone(),
    };
    // Without a record of each pinned release, there is nothing to take (the gates say why).
    if pinned.iter().any(|name| !records.contains_key(name)) {
        return Ok(result);
    }
    let (promoted, changes) = take_pins(target, promotion, &records)?;
    result.changes = changes;
    if result.changes.is_empty() || !result.passed() {
        return Ok(result);
    }
    let planned = options.proposal.plan(project, Some(options.rev()), &target.name, &promoted, servers, cx).await?;
    result.plan = Some(planned);
    result.promoted = promoted;
    Ok(result)
}

impl Proposal {
    /// The plan of `environment` at `rev` with `promoted` as its promotions file, against its
    /// cluster: what a promotion or an image update proposes.
    pub(super) async fn plan(
        &self,
        project: &Project,
        rev: Option<&str>,
        environment: &str,
        promoted: &Promoted,
        servers: &SharedServers,
        cx: Context<'_>,
    ) -> Result<Planned> {
        let (source, name, promoted) = (Arc::clone(&project.source), environment.to_string(), promoted.clone());
        let changed =
            Arc::new(super::blocking(move || load_environment_promoted(source.as_ref(), &name, promoted)).await?);
        let render = RenderOptions {
            selection: Selection {
                env: environment.to_string(),
                releases: Vec::new(),
                selectors: Vec::new(),
                changed_since: None,
                repo: self.repo.clone(),
                rev: rev.map(str::to_string),
                loaded: Some(changed),
                project: None,
                revision: None,
            },
            keys: self.keys.clone(),
            if_empty: IfEmpty::Warn,
            validate: weaver_validate::Mode::Warn,
            overrides: Default::default(),
            charts: self.charts.clone(),
            limits: self.limits.restarted(),
        };
        let planning = PlanOptions {
            render,
            against: Against::Cluster(self.connect.clone()),
            server_side: false,
            concurrency: self.concurrency,
            prune_releases: PruneReleases::No,
            servers: Some(servers.clone()),
        };
        plan(&planning, cx).await
    }
}

/// The pins as the source's `records` have them: the target's new promotions file, and what
/// changes against what the target has now.
fn take_pins(
    target: &Environment,
    promotion: &weaver_project::promotion::Promotion,
    records: &Records,
) -> Result<(Promoted, Vec<PinChange>)> {
    let mut promoted = Promoted { from: promotion.from.clone(), releases: BTreeMap::new() };
    let mut changes = Vec::new();
    for pin in &promotion.pins {
        let record = &records[&pin.release];
        let release = target.release(&pin.release).expect("pins name the target's releases (checked on load)");
        let entry = promoted.releases.entry(pin.release.clone()).or_insert_with(|| PromotedRelease {
            revision: record.revision,
            commit: record.commit.clone(),
            applied: record.time.clone(),
            ..Default::default()
        });
        let missing = |what: String| {
            Error::at(
                pin.at.clone(),
                format!("release `{}` of `{}` (revision {}) {what}", pin.release, promotion.from, record.revision),
            )
        };
        let (kind, name, from, to) = match &pin.what {
            Pinned::Chart => {
                let version = record.chart.as_ref().map(|c| c.version.clone()).ok_or_else(|| {
                    missing(
                        "has no chart in its record (a kustomization, or applied before charts were recorded)".into(),
                    )
                })?;
                entry.version = Some(version.clone());
                let now = release.remote.as_ref().map(|r| Value::from(r.version.clone()));
                ("chart", String::new(), now, Value::from(version))
            }
            Pinned::Image(repository) => {
                let mut tags: Vec<String> = record
                    .applied_manifests()
                    .flat_map(|(m, _)| weaver_kustomize::filters::images::tags_of(m, repository))
                    .collect();
                tags.sort();
                tags.dedup();
                let tag = match tags.as_slice() {
                    [tag] if !tag.is_empty() => tag.clone(),
                    [] => return Err(missing(format!("applied no container of image `{repository}`"))),
                    [_] => return Err(missing(format!("applied image `{repository}` without a tag or digest"))),
                    several => {
                        return Err(missing(format!(
                            "applied image `{repository}` with several tags: {}",
                            several.join(", ")
                        ))
                        .with_help(
                            "an image pin takes one tag: pin the values path each container's tag comes from instead",
                        ));
                    }
                };
                entry.images.insert(repository.clone(), tag.clone());
                let now = promotion.promoted.releases.get(&pin.release).and_then(|p| p.images.get(repository));
                ("image", repository.clone(), now.cloned().map(Value::from), Value::from(tag))
            }
            Pinned::Values(path) => {
                let value = value_at(&record.values, path).cloned().ok_or_else(|| {
                    missing(format!("has no value at `{path}` in its recorded `values:`"))
                        .with_help("a values pin takes what the source's environment files set in the release's `values:`; records written before weaver recorded values have none: apply the source again")
                })?;
                set_value_at(&mut entry.values, path, value.clone());
                ("values", path.clone(), value_at(&release.values, path).cloned(), value)
            }
        };
        if from.as_ref() != Some(&to) {
            changes.push(PinChange {
                release: pin.release.clone(),
                pin: kind,
                name,
                from,
                to,
                revision: record.revision,
            });
        }
    }
    Ok((promoted, changes))
}

fn healthy_gate(status: &StatusReport, records: &Records) -> Gate {
    let mut evidence = Vec::new();
    let mut passed = true;
    for release in &status.releases {
        let Some(record) = records.get(&release.name) else {
            passed = false;
            evidence.push(format!("release `{}`: no record: never applied", release.name));
            continue;
        };
        if record.status == Status::Failed {
            passed = false;
            evidence.push(format!("release `{}`: revision {} failed", release.name, record.revision));
        }
        let unhealthy: Vec<String> = release
            .objects
            .iter()
            .filter(|o| o.health != Health::Healthy)
            .map(|o| {
                let health = serde_json::to_value(o.health).ok().and_then(|v| v.as_str().map(str::to_string));
                let reason = o.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                format!("{} {}{reason}", o.key, health.unwrap_or_default())
            })
            .collect();
        if unhealthy.is_empty() {
            evidence.push(format!(
                "release `{}`: revision {} {}, {} objects healthy",
                release.name,
                record.revision,
                record.status.as_str(),
                release.objects.len()
            ));
        } else {
            passed = false;
            evidence.extend(unhealthy.into_iter().map(|o| format!("release `{}`: {o}", release.name)));
        }
    }
    Gate { gate: GateKind::Healthy, passed, expression: None, evidence }
}

/// Healthy now, and nothing changed for `soak`: neither an apply (the records' times) nor a
/// condition of a recorded object (their `lastTransitionTime`s). weaver does not watch the
/// source between runs: a flap that ended leaves a newer transition time, which is seen; one
/// of an object without conditions is not.
fn soak_gate(status: &StatusReport, records: &Records, soak: Duration, now: jiff::Timestamp) -> Gate {
    let mut evidence = Vec::new();
    let mut latest: Option<(jiff::Timestamp, String)> = None;
    // A time that does not parse cannot show the soak: it fails the gate, named.
    let mut unreadable = false;
    let mut consider = |time: &str, what: String, evidence: &mut Vec<String>| match time.parse::<jiff::Timestamp>() {
        Ok(at) => {
            if latest.as_ref().is_none_or(|(l, _)| at > *l) {
                latest = Some((at, what));
            }
        }
        Err(_) => {
            unreadable = true;
            evidence.push(format!("{what}: `{time}` is not a time"));
        }
    };
    for release in &status.releases {
        if let Some(record) = records.get(&release.name) {
            let what = format!("release `{}` revision {} applied", release.name, record.revision);
            consider(&record.time, what, &mut evidence);
        }
        for object in &release.objects {
            if let Some(changed) = &object.changed_at {
                consider(changed, format!("{} condition changed", object.key), &mut evidence);
            }
        }
    }
    let healthy = status.health() == Health::Healthy;
    let Some((since, what)) = latest else {
        evidence.push("no apply recorded".to_string());
        return Gate { gate: GateKind::Soak, passed: false, expression: None, evidence };
    };
    let elapsed = Duration::try_from(now.duration_since(since)).unwrap_or_default();
    let soak_text = if soak.is_zero() { "no soakTime".to_string() } else { weaver_project::humanize(soak) };
    evidence.push(format!("last change: {what} at {since}"));
    evidence.push(format!(
        "unchanged for {} of {soak_text}, {} now (at {})",
        weaver_project::humanize(Duration::from_secs(elapsed.as_secs())),
        if healthy { "healthy" } else { "not healthy" },
        now.strftime("%Y-%m-%dT%H:%M:%SZ")
    ));
    let passed = !unreadable && healthy && elapsed >= soak;
    Gate { gate: GateKind::Soak, passed, expression: None, evidence }
}

fn drift_gate(report: &DriftReport) -> Gate {
    let mut evidence = Vec::new();
    for release in &report.releases {
        let Some(revision) = &release.revision else { continue };
        let off: Vec<String> = release
            .objects
            .iter()
            .filter(|o| o.state != State::InSync)
            .map(|o| match o.state {
                State::Missing => format!("{} missing", o.key),
                _ => {
                    let paths: Vec<&str> = o.changes.iter().map(|c| c.path.as_str()).collect();
                    format!("{} drifted: {}", o.key, paths.join(", "))
                }
            })
            .collect();
        if off.is_empty() {
            evidence.push(format!("release `{}`: revision {} as recorded", release.name, revision.number));
        }
        evidence.extend(off.into_iter().map(|o| format!("release `{}`: {o}", release.name)));
    }
    Gate { gate: GateKind::NoDrift, passed: !report.has_drift(), expression: None, evidence }
}

fn signed_gate(pinned: &[String], records: &Records, key: Option<&RecordKey>) -> Gate {
    let Some(key) = key else {
        let evidence = vec![format!(
            "no record key to check signatures with: set {RECORD_KEY_VARIABLE} to the file of the key applies sign with"
        )];
        return Gate { gate: GateKind::Signed, passed: false, expression: None, evidence };
    };
    let mut passed = true;
    let mut evidence = Vec::new();
    for name in pinned {
        let Some(record) = records.get(name) else { continue };
        let verified = key.verify(&record.signed_content(), record.signature.as_deref());
        passed &= verified == Verified::Valid;
        let revision = format!("release `{name}` revision {}", record.revision);
        evidence.push(match verified {
            Verified::Valid => format!("{revision}: signed with key {}", key.id),
            Verified::Unsigned => format!("{revision}: not signed (its apply had no {RECORD_KEY_VARIABLE})"),
            Verified::OtherKey(id) => format!("{revision}: signed with key {id}, not key {}", key.id),
            Verified::Invalid => {
                format!("{revision}: the signature does not match: the record was changed after its apply")
            }
        });
    }
    Gate { gate: GateKind::Signed, passed, expression: None, evidence }
}

/// Commits each changed target's promotions file on a new branch from HEAD.
async fn write(options: &PromoteOptions, changed: &[&TargetPromotion]) -> Result<(String, String)> {
    let files: BTreeMap<String, Vec<u8>> =
        changed.iter().map(|t| (t.file.clone(), t.promoted.to_text(&t.environment).into_bytes())).collect();
    let names: Vec<&str> = changed.iter().map(|t| t.environment.as_str()).collect();
    let mut message = format!("Promote {}\n\n", names.join(", "));
    for target in changed {
        for change in &target.changes {
            let what = match change.pin {
                "chart" => "chart version".to_string(),
                kind => format!("{kind} {}", change.name),
            };
            message.push_str(&format!(
                "{}: release `{}` {what} = {} (from {} revision {})\n",
                target.environment, change.release, change.to, target.from, change.revision
            ));
        }
    }
    options.proposal.commit("promote", names.iter().map(|name| name.to_string()).collect(), files, message).await
}

impl Proposal {
    /// Commits `files` (promotions files, as `weaver promote` and `weaver images update` write
    /// them) on a new branch, on the blocking pool: the branch and the commit. Unnamed, the
    /// branch is `weaver/<prefix>-<environments>-<digest of the files>`.
    pub(super) async fn commit(
        &self,
        prefix: &'static str,
        environments: Vec<String>,
        files: BTreeMap<String, Vec<u8>>,
        message: String,
    ) -> Result<(String, String)> {
        let (repo, rev, author, branch, signing_key) =
            (self.repo.clone(), self.rev.clone(), self.author.clone(), self.branch.clone(), self.signing_key.clone());
        super::blocking(move || {
            let mut git = GitRepo::open(&repo)?;
            if let Some((name, email)) = &author {
                git = git.with_identity(name, email);
            }
            if let Some(key) = signing_key {
                git = git.with_signing_key(key);
            }
            let head = match &rev {
                None => git.head()?.ok_or_else(|| Error::new("the repository has no commit to branch from"))?,
                Some(rev) => git.resolve(rev, "the revision written from")?,
            };
            let branch = branch.unwrap_or_else(|| {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(serde_json::to_vec(&files).unwrap_or_default());
                format!("weaver/{prefix}-{}-{}", environments.join("-"), &hex::encode(digest)[..8])
            });
            let commit = git.commit_new_branch(&branch, head.commit, &files, &message)?;
            Ok((branch, commit))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use weaver_core::manifest::ObjectKey;
    use weaver_plan::release::record::Record;
    use weaver_plan::release::status::{ObjectHealth, ReleaseHealth};

    fn source(health: Health, changed_at: Option<&str>) -> (StatusReport, Records) {
        let object = ObjectHealth {
            api_version: "apps/v1".into(),
            key: ObjectKey {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: Some("shop".into()),
                name: "web".into(),
            },
            health,
            reason: None,
            changed_at: changed_at.map(str::to_string),
            dependents: Vec::new(),
        };
        let release = ReleaseHealth {
            name: "web".into(),
            namespace: "shop".into(),
            installed: true,
            revision: None,
            objects: vec![object],
        };
        let report = StatusReport {
            environment: "staging".into(),
            context: String::new(),
            server: String::new(),
            releases: vec![release],
        };
        let record = Record { time: "2026-11-26T10:00:00Z".into(), ..crate::action::recorded(Vec::new()) };
        (report, HashMap::from([("web".to_string(), std::sync::Arc::new(record))]))
    }

    #[test]
    fn gates_are_named_in_json_as_in_messages() {
        let names = [
            (GateKind::Healthy, "healthy"),
            (GateKind::Soak, "soak"),
            (GateKind::NoDrift, "no-drift"),
            (GateKind::Signed, "signed"),
            (GateKind::Check, "check"),
        ];
        for (kind, name) in names {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(kind.to_string(), name);
        }
        let gate =
            Gate { gate: GateKind::Check, passed: false, expression: Some("x".into()), evidence: vec!["e".into()] };
        let json = serde_json::to_value(&gate).unwrap();
        assert_eq!(json, serde_json::json!({"gate": "check", "passed": false, "expression": "x", "evidence": ["e"]}));
    }

    #[test]
    fn the_soak_restarts_at_the_last_apply_or_condition_transition() {
        let soak = Duration::from_secs(30 * 60);
        let at = |time: &str| time.parse::<jiff::Timestamp>().unwrap();
        let (status, records) = source(Health::Healthy, Some("2026-11-26T10:20:00Z"));
        let gate = soak_gate(&status, &records, soak, at("2026-11-26T10:35:00Z"));
        assert!(!gate.passed);
        assert_eq!(
            gate.evidence,
            [
                "last change: Deployment.apps shop/web condition changed at 2026-11-26T10:20:00Z",
                "unchanged for 15m of 30m, healthy now (at 2026-11-26T10:35:00Z)",
            ]
        );
        assert!(soak_gate(&status, &records, soak, at("2026-11-26T10:50:00Z")).passed);
        // Without a transition since, the apply starts it.
        let (status, records) = source(Health::Healthy, Some("2026-11-26T09:00:00Z"));
        let gate = soak_gate(&status, &records, soak, at("2026-11-26T10:31:00Z"));
        assert!(gate.passed && gate.evidence[0].contains("revision 1 applied at 2026-11-26T10:00:00Z"), "{gate:?}");
        // Long enough, but not healthy now.
        let (status, records) = source(Health::Progressing, None);
        let gate = soak_gate(&status, &records, soak, at("2026-11-26T12:00:00Z"));
        assert!(!gate.passed && gate.evidence[1].ends_with("not healthy now (at 2026-11-26T12:00:00Z)"), "{gate:?}");
        // A time that is no time fails the gate, named.
        let (status, records) = source(Health::Healthy, Some("yesterday"));
        let gate = soak_gate(&status, &records, soak, at("2026-11-26T12:00:00Z"));
        assert!(!gate.passed && gate.evidence[0].contains("`yesterday` is not a time"), "{gate:?}");
    }
}
