//! Status: the health of each object of the selected releases' last applied revisions, as
//! the cluster has it now. Nothing is rendered or decrypted: the records say which objects
//! each release has, `weaver_cluster::ready` what healthy means (with the environment's
//! `healthChecks`). Only reads, the same LISTs as drift (and, for `weaver ui`, those of the
//! objects they own).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use super::drift::{DriftOptions, by_key, place, recorded_live, unlisted};
use super::plan::Observed;
use super::render::{IfEmpty, select};
use super::{OnProgress, Progress, connect_sharing, phase, tell_retries};
use serde_json::Value;

use crate::observe::own_records;
use weaver_cluster::{
    Cluster, EVENTS_SHOWN, ManagedFields, ObjectEvent, Readiness, built_in_readiness, fields_parsed, newest_first,
    readiness, with_pods, workload_kind,
};
use weaver_core::error::{Error, Result};
use weaver_core::manifest::ListTarget;
use weaver_core::manifest::owned_by;
use weaver_plan::release::fingerprint::of_recorded;
use weaver_plan::release::record::{Records, Wanted};
use weaver_plan::release::status::{DEPENDENT_DEPTH, Health, ObjectHealth, Report, release_health};

/// Status reads what drift reads: the selection, how to connect, how many requests at once.
pub type StatusOptions = DriftOptions;

/// What objects of the release namespaces can own others and be owned: a Deployment's
/// ReplicaSets, their Pods, a CronJob's Jobs and theirs. `weaver ui` draws them under their owners.
const DEPENDENT_KINDS: [(&str, &str); 3] = [("apps/v1", "ReplicaSet"), ("v1", "Pod"), ("batch/v1", "Job")];

/// The health of each selected release's last deployed objects.
pub async fn status(options: &StatusOptions, on: OnProgress<'_>) -> Result<Report> {
    Ok(judged(options, false, None, on).await?.0)
}

/// [`status`], with the records it read (each release's last applied), by release name.
pub async fn status_with_records(options: &StatusOptions, on: OnProgress<'_>) -> Result<(Report, Records)> {
    let (report, _, records) = judged(options, false, None, on).await?;
    Ok((report, records))
}

/// What `weaver ui`'s environment page reads of the cluster: the health of each object with
/// the live objects it owns, and what the cluster said of them all.
pub struct Detailed {
    pub report: Report,
    /// The events of the objects and their dependents, newest first, at most [`EVENTS_SHOWN`].
    pub events: Vec<ObjectEvent>,
}

/// [`status`], each object with the live objects it owns (of `DEPENDENT_KINDS`, in the
/// release namespaces: one more LIST per kind and namespace), judged by the same rules, and
/// their events (one LIST per release namespace). Either addition the user may not list is a
/// warning and costs only itself. Where `observed` is given (a plan's observation of the same
/// selection), the releases' objects and records are read from it, not listed again.
pub async fn status_in_detail(
    options: &StatusOptions,
    observed: Option<&Observed>,
    on: OnProgress<'_>,
) -> Result<Detailed> {
    let (report, events, _) = judged(options, true, observed, on).await?;
    Ok(Detailed { report, events })
}

/// The health report, the events (when `in_detail`) and the records read, by release name.
async fn judged(
    options: &StatusOptions,
    in_detail: bool,
    observed: Option<&Observed>,
    on: OnProgress<'_>,
) -> Result<(Report, Vec<ObjectEvent>, Records)> {
    let selected = select(&options.selection, IfEmpty::Warn, on)?;
    let own;
    let cluster = match observed {
        Some(observed) => &observed.cluster,
        None => {
            own = connect_sharing(
                options.connect.clone(),
                options.servers.as_ref(),
                &selected.env,
                "reading health in",
                on,
            )
            .await?;
            &own
        }
    };
    let started = Instant::now();
    let releases = selected.releases();
    let environment = &selected.env.name;
    let namespaces: BTreeSet<&str> = releases.iter().map(|r| r.namespace.as_str()).collect();
    // The last apply's objects, deployed or not: a wait that failed left them in the cluster.
    let live = async {
        match observed {
            Some(Observed { live, .. }) => {
                let names: Vec<(&str, &str)> =
                    releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
                // Mostly the plan's deployed records: those are not decoded again.
                let records = own_records(&live.objects, &names, environment, Wanted::Applied, &live.records)?;
                let extra = unlisted(cluster, live, &releases, &records, options.concurrency).await?;
                Ok::<_, Error>((records, extra))
            }
            None => {
                let live = recorded_live(cluster, &releases, environment, Wanted::Applied, options.concurrency).await?;
                Ok((live.records, live.objects))
            }
        }
    };
    // Read at once: the dependents and events need only the release namespaces.
    let (live, (others, events)) = futures::join!(live, async {
        match in_detail {
            true => {
                futures::join!(
                    dependents(cluster, &namespaces, options.concurrency, on),
                    events(cluster, &namespaces, on)
                )
            }
            false => (Vec::new(), Vec::new()),
        }
    });
    // What this read itself: all of the objects, or what the observation given lacks.
    let (records, listed) = live?;
    phase(on, "read records, dependents and events", started);
    let observed_objects = observed.map_or(&[][..], |o| &o.live.objects[..]);
    let by_key = by_key(observed_objects.iter().chain(&listed).map(|o| &**o), &releases);
    let owned = owned_by(others.iter().map(|object| &**object));
    // A workload not ready is told with why its Pods are not: without the tree, they are read
    // only for that.
    let unready_workload =
        |object: &&Value| workload_kind(object).is_some() && built_in_readiness(object) != Readiness::Ready;
    let pods = match in_detail || !by_key.values().any(unready_workload) {
        true => Vec::new(),
        false => dependents(cluster, &namespaces, options.concurrency, on).await,
    };
    let pods_owned_by_status;
    let pods_owned = match in_detail {
        true => &owned,
        false => {
            pods_owned_by_status = owned_by(pods.iter().map(|object| &**object));
            &pods_owned_by_status
        }
    };
    let now = jiff::Timestamp::now();
    // Each release judged on the thread pool: thousands of objects on a page. Judgments kept
    // with the render are reused for releases whose reads did not change.
    let kept = observed.and_then(|o| o.judgments.as_deref()).map(|j| &j.health);
    let releases = super::judging_in_place(|| {
        releases
            .par_iter()
            .map(|release| {
                let record = records.get(&release.name).map(|r| &**r);
                let place = |manifest: &Value| place(cluster, manifest, release);
                let judge = || {
                    release_health(release, record, &by_key, &owned, place, |object| {
                        let judged = match release.health_checks.is_empty() {
                            true => built_in_readiness(object),
                            // The environment's rules (CEL) may read any field, managedFields too, which
                            // the LISTs kept as text.
                            false => readiness(&fields_parsed(object), &release.health_checks),
                        };
                        health(with_pods(judged, object, pods_owned, now))
                    })
                };
                match kept {
                    Some(kept) => {
                        let read = of_recorded(record, &by_key, place, Some((&owned, DEPENDENT_DEPTH)));
                        kept.judged(&release.name, read, judge)
                    }
                    None => judge(),
                }
            })
            .collect()
    });
    phase(on, "observe", started);
    // An observation given was told of by the plan that made it.
    if observed.is_none() {
        tell_retries(cluster, on);
    }
    let report = Report {
        environment: environment.clone(),
        context: cluster.info.context.clone(),
        server: cluster.info.server.clone(),
        releases,
    };
    let events = of_objects(events, &report);
    Ok((report, events, records))
}

/// The live objects of [`DEPENDENT_KINDS`] in `namespaces`; none, with a warning, when the user
/// may not list them (no `list pods`): the tree is an addition to the health.
async fn dependents(
    cluster: &Cluster,
    namespaces: &BTreeSet<&str>,
    concurrency: usize,
    on: OnProgress<'_>,
) -> Vec<Arc<Value>> {
    let targets: BTreeSet<ListTarget> = DEPENDENT_KINDS
        .iter()
        .filter(|(api_version, kind)| cluster.resolve(api_version, kind).is_ok())
        .flat_map(|(api_version, kind)| {
            namespaces.iter().map(|ns| ListTarget {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: Some(ns.to_string()),
            })
        })
        .collect();
    // Shared with the watches, not copied, and their managedFields kept as text: the tree
    // never reads them, and health rules that may read them parse them per object (see
    // `judged`).
    match cluster.list_shared(&targets, "", ManagedFields::Text, concurrency).await {
        Ok(listed) => listed,
        Err(err) => {
            on(Progress::Warning(format!("objects' dependents not shown: {err}")));
            Vec::new()
        }
    }
}

/// The events of `namespaces`; none, with a warning, when the user may not list them.
async fn events(cluster: &Cluster, namespaces: &BTreeSet<&str>, on: OnProgress<'_>) -> Vec<ObjectEvent> {
    let listed = futures::future::try_join_all(namespaces.iter().map(|ns| cluster.events(ns, None))).await;
    match listed {
        Ok(listed) => listed.into_iter().flatten().collect(),
        Err(err) => {
            on(Progress::Warning(format!("events not shown: {err}")));
            Vec::new()
        }
    }
}

/// The events of the objects `report` shows (theirs and their dependents'), newest first,
/// at most [`EVENTS_SHOWN`].
fn of_objects(events: Vec<ObjectEvent>, report: &Report) -> Vec<ObjectEvent> {
    fn keys<'a>(objects: &'a [ObjectHealth], into: &mut HashSet<(&'a str, Option<&'a str>, &'a str)>) {
        for object in objects {
            into.insert((&object.key.kind, object.key.namespace.as_deref(), &object.key.name));
            keys(&object.dependents, into);
        }
    }
    let mut shown = HashSet::new();
    for release in &report.releases {
        keys(&release.objects, &mut shown);
    }
    let about = |e: &ObjectEvent| shown.contains(&(e.kind.as_str(), e.namespace.as_deref(), e.name.as_str()));
    newest_first(events.into_iter().filter(about).collect(), EVENTS_SHOWN)
}

/// A wait's readiness as health: ready is healthy, pending progressing.
fn health(readiness: Readiness) -> (Health, Option<String>) {
    match readiness {
        Readiness::Ready => (Health::Healthy, None),
        Readiness::Pending(why) => (Health::Progressing, Some(why)),
        Readiness::Failed(why) => (Health::Failed, Some(why)),
        Readiness::Unknown(why) => (Health::Unknown, Some(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard};
    use weaver_plan::release::record::Status;

    /// Each object's kind and health.
    fn healths(report: &Report) -> Vec<(&str, Health)> {
        report.releases.iter().flat_map(|r| &r.objects).map(|o| (o.key.kind.as_str(), o.health)).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_applied_release_is_installed_at_its_revision_and_healthy() {
        let fixture = Fixture::start().await;
        let heard = Heard::default();
        let before = status(&fixture.drift_options(), heard.cx().on).await.unwrap();
        assert_eq!((before.releases[0].revision.as_ref(), before.releases[0].objects.len()), (None, 0));
        fixture.apply().await;
        let (report, records) = status_with_records(&fixture.drift_options(), heard.cx().on).await.unwrap();
        let release = &report.releases[0];
        assert!(release.installed);
        assert_eq!(release.revision.as_ref().map(|(r, status)| (r.number, *status)), Some((1, Status::Deployed)));
        assert_eq!(healths(&report), [("ConfigMap", Health::Healthy), ("Deployment", Health::Healthy)]);
        assert_eq!(report.health(), Health::Healthy);
        assert_eq!(records["web"].revision, 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_workload_not_ready_is_progressing_and_one_deleted_failed() {
        let fixture = Fixture::start().await;
        fixture.server.set_auto_ready(false);
        let mut options = fixture.apply_options();
        options.settings.wait = false;
        let heard = Heard::default();
        crate::action::apply::apply(&options, heard.cx()).await.unwrap();
        fixture.delete_config_map().await;
        let report = status(&fixture.drift_options(), heard.cx().on).await.unwrap();
        assert_eq!(healths(&report), [("ConfigMap", Health::Failed), ("Deployment", Health::Progressing)]);
        assert_eq!(report.health(), Health::Failed);
    }

    /// What the page adds to the health (events, dependents) costs only itself when refused.
    #[tokio::test(flavor = "multi_thread")]
    async fn in_detail_events_the_user_may_not_list_are_a_warning() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        fixture.server.forbid("list", "events", None);
        let heard = Heard::default();
        let detailed = status_in_detail(&fixture.drift_options(), None, heard.cx().on).await.unwrap();
        assert_eq!(detailed.report.health(), Health::Healthy);
        assert!(detailed.events.is_empty());
        let told = heard.told();
        assert!(told.len() == 1 && told[0].starts_with("events not shown: "), "{told:?}");
    }
}
