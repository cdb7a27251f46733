//! Drift: what changed in the cluster since each selected release's last deployed revision,
//! and, with `--correct`, putting it back. Nothing is rendered or decrypted: the environment
//! only says which releases live where, and the records hold what to compare and re-apply.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::Value;

use super::apply::{Applied, Locked, Settings, apply_options, execute};
use super::judgments::Kept;
use super::notifications::notify;
use super::plan::Observed;
use super::render::{IfEmpty, Selected, Selection, select_blocking};
use super::rollback::recorded_release;
use super::{Context, OnProgress, Progress, connect, connect_sharing, phase, tell_retries};
use crate::apply::{Outcome, Report as ApplyReport};
use crate::notify::Message;
use crate::observe::{Live, Unlabelled, list_labelled, list_live, recorded_target};
use weaver_cluster::{Cluster, ConnectOptions, ManagedFields, SharedServers};
use weaver_core::error::Result;
use weaver_core::manifest::{LABEL_RELEASE, ObjectKey, label};
use weaver_plan::release::drift::{
    Correction, CorrectionResult, CorrectionRun, ReleaseCorrection, ReleaseDrift, ReleaseState, Report, State,
    compare_release,
};
use weaver_plan::release::fingerprint::of_recorded;
use weaver_plan::release::record::{self, RecordedObject, Records, Wanted};
use weaver_project::Release;

#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub selection: Selection,
    pub connect: ConnectOptions,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// What the environments of a fleet share per API server (requests in flight, discovery).
    pub servers: Option<SharedServers>,
    /// The age identities of `fromSecret` notification URLs, drift's only decryption.
    pub keys: super::Keys,
    /// Tell the environment's `notifications:` of drift found (the CLI, each run); the
    /// controller tells only drift that differs from what it found before ([`tell_drift`]).
    pub notify: bool,
}

/// Compares each selected release's last deployed revision with the cluster: one LIST of
/// Secrets per release namespace (the records), then one LIST per (resource, namespace) the
/// records name, all with weaver's release label. Only reads the cluster; drift found is told
/// to the environment's `notifications:`.
pub async fn drift(options: &DriftOptions, cx: Context<'_>) -> Result<Report> {
    drift_observed(options, None, cx).await
}

/// [`drift`], judging `observed` where given: a plan's observation of the same selection
/// (which lists what the deployed records name, and their Secrets), so that `weaver ui`'s
/// environment page reads the cluster once for its plan, drift and status.
pub async fn drift_observed(options: &DriftOptions, observed: Option<&Observed>, cx: Context<'_>) -> Result<Report> {
    let on = cx.on;
    let selected = select_blocking(&options.selection, IfEmpty::Warn, cx).await?;
    let report = match observed {
        Some(Observed { cluster, live, .. }) => {
            let started = Instant::now();
            let releases = selected.releases();
            let extra = unlisted(cluster, live, &releases, &live.records, options.concurrency).await?;
            let by_key = by_key(live.objects.iter().chain(&extra).map(|o| &**o), &releases);
            let kept = observed.and_then(|o| o.judgments.as_deref()).map(|j| &j.drift);
            let report = judge(cluster, &selected, &live.records, &by_key, kept);
            phase(on, "compare", started);
            report
        }
        None => {
            let cluster =
                connect_sharing(options.connect.clone(), options.servers.as_ref(), &selected.env, "comparing with", on)
                    .await?;
            let (report, _) = compare(&cluster, &selected, options.concurrency, on).await?;
            tell_retries(&cluster, on);
            report
        }
    };
    if options.notify && report.has_drift() {
        tell(&selected, options, &report, cx).await;
    }
    Ok(report)
}

/// Tells the environment's notifications of the drift in `report`, which [`drift`] found
/// without telling.
pub async fn tell_drift(options: &DriftOptions, report: &Report, cx: Context<'_>) -> Result<()> {
    let selected = select_blocking(&options.selection, IfEmpty::Warn, cx).await?;
    tell(&selected, options, report, cx).await;
    Ok(())
}

/// Tells the environment's notifications of the drift in `report`, and of its correction.
async fn tell(selected: &Selected, options: &DriftOptions, report: &Report, cx: Context<'_>) {
    let message = Message::drift(report, cx.redactor);
    let keys = (options.selection.repo.as_path(), &options.keys);
    notify(&selected.env, selected.project.source.as_ref(), keys, message, cx).await;
}

/// The drift of the selected releases, and their last deployed records.
async fn compare(
    cluster: &Cluster,
    selected: &Selected,
    concurrency: usize,
    on: OnProgress<'_>,
) -> Result<(Report, Records)> {
    let started = Instant::now();
    let releases = selected.releases();
    let live = recorded_live(cluster, &releases, &selected.env.name, Wanted::Deployed, concurrency).await?;
    let report = judge(cluster, selected, &live.records, &by_key(live.objects.iter().map(|o| &**o), &releases), None);
    phase(on, "observe and compare", started);
    Ok((report, live.records))
}

/// The drift of the selected releases: their `records` compared with the live objects, or
/// kept from an earlier judgment of the same reads.
fn judge(
    cluster: &Cluster,
    selected: &Selected,
    records: &Records,
    by_key: &HashMap<ObjectKey, &Value>,
    kept: Option<&Kept<ReleaseDrift>>,
) -> Report {
    use rayon::prelude::*;
    // Each release's objects compared on a thread of the pool: thousands of objects on a page,
    // while a controller's worker hands its other tasks on, whichever path judges.
    let releases = super::judging_in_place(|| {
        selected
            .releases()
            .par_iter()
            .map(|release| {
                let record = records.get(&release.name).map(|r| &**r);
                let place = |manifest: &Value| place(cluster, manifest, release);
                let judge = || compare_release(release, record, by_key, place);
                match kept {
                    Some(kept) => kept.judged(&release.name, of_recorded(record, by_key, place, None), judge),
                    None => judge(),
                }
            })
            .collect()
    });
    Report {
        environment: selected.env.name.clone(),
        context: cluster.info.context.clone(),
        server: cluster.info.server.clone(),
        releases,
        correction: None,
    }
}

/// The newest record of `releases` that `wanted` picks and the live objects they name: one
/// LIST of Secrets per release namespace, then one LIST per (resource, namespace) the records
/// name, all with weaver's release label.
pub(super) async fn recorded_live(
    cluster: &Cluster,
    releases: &[&Release],
    environment: &str,
    wanted: Wanted,
    concurrency: usize,
) -> Result<Live> {
    let names: Vec<(&str, &str)> = releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
    let unlabelled = Unlabelled::new();
    list_live(
        cluster,
        BTreeSet::new(),
        &names,
        &Default::default(),
        environment,
        wanted,
        ManagedFields::Text,
        concurrency,
        &unlabelled,
    )
    .await
}

/// The live objects of `releases` among `objects` by key, the records left out. An
/// observation made for a plan holds objects of other releases too (those it renders).
pub(super) fn by_key<'a>(
    objects: impl Iterator<Item = &'a Value>,
    releases: &[&Release],
) -> HashMap<ObjectKey, &'a Value> {
    let names: HashSet<&str> = releases.iter().map(|r| r.name.as_str()).collect();
    let ours = |o: &&Value| label(o, LABEL_RELEASE).is_some_and(|release| names.contains(release));
    objects.filter(ours).filter(|o| !record::is_record(o)).map(|o| (ObjectKey::of(o), o)).collect()
}

/// The objects of `releases` that `records` name and `live` did not list (an observation made
/// for other records: a plan's has the deployed ones, status reads the newest of any status),
/// listed now; usually none.
pub(super) async fn unlisted(
    cluster: &Cluster,
    live: &Live,
    releases: &[&Release],
    records: &Records,
    concurrency: usize,
) -> Result<Vec<Arc<Value>>> {
    let mut missing = BTreeSet::new();
    for release in releases {
        for manifest in records.get(&release.name).into_iter().flat_map(|r| &r.manifests) {
            if let Some(target) = recorded_target(cluster, manifest, &release.namespace)
                && !live.listed.contains(&target)
            {
                missing.insert(target);
            }
        }
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = releases.iter().map(|r| r.name.as_str()).collect();
    list_labelled(cluster, &missing, &names, ManagedFields::Text, concurrency).await
}

/// Where the cluster keeps a recorded object of `release`: its namespace (None when
/// cluster-scoped), or None when its kind is not served.
pub(super) fn place(cluster: &Cluster, manifest: &Value, release: &Release) -> Option<Option<String>> {
    recorded_target(cluster, manifest, &release.namespace).map(|target| target.namespace)
}

#[derive(Debug, Clone)]
pub struct CorrectOptions {
    pub drift: DriftOptions,
    /// How the correction applies: a dry run or not, the lock's timeout; it never prunes,
    /// never waits, and takes back the fields others changed.
    pub settings: Settings,
}

/// What `drift --correct` found and did.
pub struct Corrected {
    /// The drift found: under the environment's lock when there was some to correct.
    pub report: Report,
    /// The correction, an apply of each drifted release's last deployed revision; None when
    /// nothing had drifted.
    pub applied: Option<Applied>,
}

/// Finds drift and, where a release drifted, re-applies its last deployed revision (never the
/// repository's newer state) under the environment's lock: changed fields are set back,
/// deleted objects created again, nothing is pruned and no hook runs; `ignoreDifferences`
/// rules are followed. Each corrected release records a revision saying which one it put back.
pub async fn correct(options: &CorrectOptions, cx: Context<'_>) -> Result<Corrected> {
    let Context { redactor, on, .. } = cx;
    let selected = select_blocking(&options.drift.selection, IfEmpty::Warn, cx).await?;
    let connect_options = options.drift.connect.clone().retrying_within(options.settings.timeout);
    let cluster = connect(connect_options, &selected.env, "correcting drift in", on).await?;
    let concurrency = options.drift.concurrency;
    // A first look, without the lock: a scheduled run that finds nothing takes no lock.
    let (report, _) = compare(&cluster, &selected, concurrency, on).await?;
    if !report.has_drift() {
        let mut report = report;
        report.correction = Some(CorrectionRun { dry_run: options.settings.dry_run, failed: false });
        return Ok(Corrected { report, applied: None });
    }
    // Under the lock, again: an apply may have changed the records or the objects meanwhile.
    let found: OnceLock<Report> = OnceLock::new();
    let desired = async {
        let (report, records) = compare(&cluster, &selected, concurrency, on).await?;
        let mut releases = Vec::new();
        let mut sensitive = HashSet::new();
        for drifted in report.releases.iter().filter(|r| r.state() == ReleaseState::Drifted) {
            let (Some(release), Some(record)) = (selected.env.release(&drifted.name), records.get(&drifted.name))
            else {
                continue;
            };
            on(Progress::Status(format!(
                "release `{}`: putting back revision {} (drift --correct)",
                release.name, record.revision
            )));
            record.register_secret_values(redactor);
            sensitive.extend(record.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key));
            releases.push(recorded_release(release, record));
        }
        let mut apply_options = apply_options(&selected.env, &options.settings, None, None);
        apply_options.correction = true;
        apply_options.sensitive = sensitive;
        let _ = found.set(report);
        Ok(Locked { releases, options: apply_options, looked_up: Vec::new() })
    };
    let applied = execute(&cluster, &selected.env, &options.settings, desired, cx).await?;
    let mut report = found.into_inner().expect("execute made what it applies");
    tell_corrections(&mut report, &applied.report, options.settings.dry_run);
    // The look under the lock may find nothing left: an apply put it back meanwhile.
    if report.has_drift() {
        tell(&selected, &options.drift, &report, cx).await;
    }
    Ok(Corrected { report, applied: Some(applied) })
}

/// Says in the drift report what the correction did about each drifted release and object.
fn tell_corrections(report: &mut Report, applied: &ApplyReport, dry_run: bool) {
    for release in &mut report.releases {
        let Some(result) = applied.releases.iter().find(|r| r.name == release.name) else { continue };
        release.correction = Some(ReleaseCorrection { revision: result.revision, error: result.error.clone() });
        for object in release.objects.iter_mut().filter(|o| o.state != State::InSync) {
            let outcome = result.objects.iter().find(|o| o.key == object.key);
            object.correction = Some(match outcome {
                Some(done) => Correction {
                    result: match done.outcome {
                        Outcome::Created | Outcome::Configured => CorrectionResult::Corrected,
                        Outcome::Unchanged | Outcome::Kept | Outcome::Pruned => CorrectionResult::Unchanged,
                        Outcome::Failed => CorrectionResult::Failed,
                        Outcome::NotApplied => CorrectionResult::NotApplied,
                    },
                    message: done.message.clone(),
                },
                None => Correction {
                    result: CorrectionResult::NotApplied,
                    message: Some(
                        result.error.clone().unwrap_or_else(|| "the correction did not reach it".to_string()),
                    ),
                },
            });
        }
    }
    let failed = applied.failed()
        || report.releases.iter().flat_map(|r| &r.objects).any(|o| {
            o.correction
                .as_ref()
                .is_some_and(|c| matches!(c.result, CorrectionResult::Failed | CorrectionResult::NotApplied))
        });
    report.correction = Some(CorrectionRun { dry_run, failed });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard};
    use weaver_plan::diff::ChangeOp;

    /// Each release's name and state.
    fn states(report: &Report) -> Vec<(&str, ReleaseState)> {
        report.releases.iter().map(|r| (r.name.as_str(), r.state())).collect()
    }

    /// Each object not in sync: its kind, state and the paths of the fields that differ.
    fn drifted(report: &Report) -> Vec<(&str, State, Vec<&str>)> {
        let objects = report.releases.iter().flat_map(|r| &r.objects).filter(|o| o.state != State::InSync);
        objects.map(|o| (o.key.kind.as_str(), o.state, o.changes.iter().map(|c| c.path.as_str()).collect())).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_field_changed_on_the_server_is_drift_and_an_apply_leaves_none() {
        let fixture = Fixture::start().await;
        let options = fixture.drift_options();
        let before = drift(&options, Heard::default().cx()).await.unwrap();
        assert_eq!(states(&before), [("web", ReleaseState::NoRecord)]);
        fixture.apply().await;
        let applied = drift(&options, Heard::default().cx()).await.unwrap();
        assert_eq!(states(&applied), [("web", ReleaseState::InSync)]);
        assert_eq!(applied.releases[0].revision.as_ref().map(|r| r.number), Some(1));
        fixture.edit_greeting("changed by hand").await;
        let edited = drift(&options, Heard::default().cx()).await.unwrap();
        assert!(edited.has_drift());
        assert_eq!(drifted(&edited), [("ConfigMap", State::Drifted, vec!["data.greeting"])]);
        let change = &edited.releases[0].objects[0].changes[0];
        assert_eq!(change.op, ChangeOp::Replace);
        assert_eq!(
            (change.recorded.as_ref(), change.live.as_ref()),
            (Some(&"hello".into()), Some(&"changed by hand".into()))
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_object_deleted_on_the_server_is_missing() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        fixture.delete_config_map().await;
        let report = drift(&fixture.drift_options(), Heard::default().cx()).await.unwrap();
        assert_eq!(drifted(&report), [("ConfigMap", State::Missing, vec![])]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_correction_puts_the_deployed_revision_back_and_records_it() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        // The repository's newer state is not what a correction applies.
        fixture.repo.greet("not applied yet");
        fixture.edit_greeting("changed by hand").await;
        // As the CLI corrects: taking back the fields changed by hand, neither pruning nor waiting.
        let settings =
            Settings { force_conflicts: true, prune: false, wait: false, ..fixture.apply_options().settings };
        let options = CorrectOptions { drift: fixture.drift_options(), settings };
        let heard = Heard::default();
        let corrected = correct(&options, heard.cx()).await.unwrap();
        assert_eq!(drifted(&corrected.report), [("ConfigMap", State::Drifted, vec!["data.greeting"])]);
        let object = &corrected.report.releases[0].objects[0];
        assert_eq!(object.correction.as_ref().map(|c| c.result), Some(CorrectionResult::Corrected));
        assert_eq!(corrected.report.releases[0].correction.as_ref().and_then(|c| c.revision), Some(2));
        assert!(heard.told().contains(&"release `web`: putting back revision 1 (drift --correct)".to_string()));
        assert_eq!(fixture.config_map("web-config").await.unwrap().data.unwrap()["greeting"], "hello");
        let records = fixture.records().await;
        assert_eq!(
            records.iter().map(|r| (r.revision, r.correction_of)).collect::<Vec<_>>(),
            [(1, None), (2, Some(1))]
        );
        // Nothing left to correct: no lock is taken, nothing applied.
        let again = correct(&options, heard.cx()).await.unwrap();
        assert!(again.applied.is_none() && !again.report.has_drift());
    }
}
