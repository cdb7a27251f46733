//! The release record an apply writes: the next revision, what it says, superseding the
//! previous deployed revision, and keeping only the last [`KEPT_REVISIONS`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{ApplyOptions, Outcome, ReleaseInput, ReleaseResult};
use weaver_cluster::Cluster;
use weaver_core::error::{Error, Result};
use weaver_core::manifest::{LABEL_RELEASE, ObjectKey, ObjectKeyRef, label, namespace_of};
use weaver_plan::release::record::{self, LABEL_STATUS, Record, RecordedObject, Status};
use weaver_project::chart::ChartMeta;

/// How many revisions of a release are kept, as helm's default `--history-max`.
pub const KEPT_REVISIONS: usize = 10;

/// A release's records as the cluster had them before this apply. Only labels are read here:
/// the last deployed record was decoded once, when the cluster was observed.
pub(super) struct History<'a> {
    release: String,
    namespace: String,
    environment: String,
    /// Every revision with a Secret, complete or not, and the Secrets' names.
    revisions: BTreeMap<u32, Vec<String>>,
    /// Revisions of this environment labelled `deployed` (normally one).
    deployed: Vec<u32>,
    last_deployed: Option<&'a Record>,
    /// The chart this apply applies.
    chart: Option<ChartMeta>,
    /// The release's `values:` as the environment sets them.
    values: Map<String, Value>,
}

impl<'a> History<'a> {
    /// `secrets`: the release's record Secrets in its namespace (see [`by_release`]);
    /// `last_deployed`: its newest deployed record.
    pub(super) fn of(
        secrets: &[&Value],
        last_deployed: Option<&'a Record>,
        input: &ReleaseInput<'_>,
        environment: &str,
    ) -> History<'a> {
        let release = &input.rendered.name;
        let deployed = record::deployed_revisions(secrets.iter().copied(), environment)
            .into_keys()
            .filter(|(name, _)| name == release)
            .map(|(_, revision)| revision)
            .collect();
        History {
            release: release.clone(),
            namespace: input.rendered.namespace.clone(),
            environment: environment.to_string(),
            revisions: record::revisions(secrets.iter().copied(), release),
            deployed,
            last_deployed,
            chart: input.rendered.chart_meta.clone(),
            values: input.rendered.values.clone(),
        }
    }

    pub(super) fn last_deployed(&self) -> Option<&'a Record> {
        self.last_deployed
    }

    /// The manifests a new revision holds: the desired ones (as stored, from the plan), plus
    /// those `--no-prune` (or a failed prune) left in place, so a later apply still knows to
    /// prune them.
    fn manifests<'v>(&'v self, desired: &[&'v Value], kept: &[ObjectKey]) -> Vec<&'v Value> {
        let mut manifests = desired.to_vec();
        if let Some(last) = self.last_deployed().filter(|_| !kept.is_empty()) {
            manifests.extend(last.manifests.iter().filter(|m| kept.contains(&ObjectKey::of(m))));
        }
        manifests
    }

    /// Whether applying `desired` with `hooks` changes what the release's record says.
    pub(super) fn needs_record(&self, desired: &[&Value], hooks: &[Value], options: &ApplyOptions) -> bool {
        options.rollback_of.is_some()
            || self.last_deployed().is_none_or(|last| {
                !same_objects(&last.manifests, &self.manifests(desired, &[]))
                    || !last.has_hooks(hooks)
                    || !self.same_chart(last)
                    || !self.same_values(last)
                    || !signed_as_asked(last, options)
            })
    }

    /// Whether `last` records the chart applied now. A record from before charts were kept
    /// says nothing: the first apply after that upgrade writes no revision for it alone.
    fn same_chart(&self, last: &Record) -> bool {
        last.chart.is_none() || last.chart == self.chart
    }

    /// Whether `last` records the values applied now, which promotions read. A record from
    /// before values were kept (none) gets a revision that has them: a pin could not be taken
    /// from it, and an apply is how the guide says to give it one.
    fn same_values(&self, last: &Record) -> bool {
        last.values == self.values
    }

    /// The revision to record for `result`, or None when the apply changed nothing and the
    /// last deployed revision already says what the release is.
    pub(super) fn next_record(
        &self,
        desired: &[&Value],
        hooks: &[Value],
        result: &ReleaseResult,
        kept: &[ObjectKey],
        options: &ApplyOptions,
    ) -> Option<Record> {
        let manifests = self.manifests(desired, kept);
        let acted = result.objects.iter().any(|o| o.outcome != Outcome::Unchanged && o.outcome != Outcome::Kept)
            || !result.hooks.is_empty();
        let recorded = self.last_deployed().is_some_and(|last| {
            same_objects(&last.manifests, &manifests)
                && last.has_hooks(hooks)
                && self.same_chart(last)
                && self.same_values(last)
                && signed_as_asked(last, options)
        });
        if result.error.is_none() && !acted && recorded && options.rollback_of.is_none() {
            return None;
        }
        // A correction records what it re-applied: the corrected revision's provenance.
        let corrected = self.last_deployed().filter(|_| options.correction);
        let manifests: Vec<Value> = manifests.into_iter().cloned().collect();
        let outcomes: HashMap<&ObjectKey, Outcome> = result.objects.iter().map(|o| (&o.key, o.outcome)).collect();
        let objects = manifests
            .iter()
            .map(|manifest| {
                let key = ObjectKey::of(manifest);
                let applied = matches!(
                    outcomes.get(&key),
                    Some(Outcome::Created | Outcome::Configured | Outcome::Unchanged | Outcome::Kept)
                );
                let sensitive = options.sensitive.contains(&key);
                RecordedObject {
                    api_version: manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
                    kind: key.kind,
                    namespace: key.namespace,
                    sensitive,
                    name: key.name,
                    applied,
                }
            })
            .collect();
        let mut record = Record {
            release: self.release.clone(),
            environment: self.environment.clone(),
            revision: self.revisions.keys().next_back().map_or(1, |last| last + 1),
            status: if result.error.is_some() { Status::Failed } else { Status::Deployed },
            time: jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            commit: corrected.map_or_else(|| options.commit.clone(), |last| last.commit.clone()),
            dirty: corrected.map_or(options.dirty, |last| last.dirty),
            rollback_of: options.rollback_of,
            correction_of: corrected.map(|last| last.revision),
            overrides: match corrected {
                Some(last) => last.overrides.clone(),
                None if self.chart.is_some() => options.overrides.clone(),
                None => Vec::new(),
            },
            lock_namespace: Some(options.lock_namespace.clone()),
            applied_by: Some(options.applied_by.clone()),
            chart: self.chart.clone(),
            objects,
            manifests,
            hooks: hooks.to_vec(),
            hook_runs: result.hooks.iter().map(super::HookResult::to_record).collect(),
            adopted_from: None,
            taken_from: Vec::new(),
            values: self.values.clone(),
            signature: None,
        };
        record.signature = options.record_key.as_ref().map(|key| key.sign(&record.signed_content()));
        Some(record)
    }

    /// Writes `record`; a deployed one supersedes the previous deployed revision. Revisions
    /// beyond the last [`KEPT_REVISIONS`] are deleted.
    pub(super) async fn write(&self, cluster: &Cluster, record: &Record) -> Result<()> {
        let served = cluster.resolve("v1", "Secret").map_err(|_| Error::new("the cluster does not serve v1 Secret"))?;
        for secret in record::to_secrets(record, &self.namespace)? {
            // Server-side apply is idempotent, so a retried or leftover chunk is simply replaced.
            cluster.apply(&secret, &served, false, true).await.map_err(|err| match err {
                // It names the Secret already ("applying Secret NS/NAME: …").
                weaver_cluster::ApplyError::Other(err) => err,
                weaver_cluster::ApplyError::Conflict(m) | weaver_cluster::ApplyError::NotFound(m) => {
                    Error::new(format!("writing {}: {m}", ObjectKey::of(&secret)))
                }
            })?;
        }
        if record.status == Status::Deployed {
            let superseded = Map::from_iter([(LABEL_STATUS.to_string(), Value::from(Status::Superseded.as_str()))]);
            for previous in &self.deployed {
                for name in self.revisions.get(previous).into_iter().flatten() {
                    cluster.set_labels(&served, Some(&self.namespace), name, &superseded).await?;
                }
            }
        }
        let keep_from = self.revisions.len().saturating_sub(KEPT_REVISIONS - 1);
        for names in self.revisions.values().take(keep_from) {
            for name in names {
                cluster.delete(&served, Some(&self.namespace), name, false).await?;
            }
        }
        Ok(())
    }
}

/// The record Secrets among `live`, by (namespace, release): each release reads only its own,
/// so a run over many releases decodes every record once.
pub(super) fn by_release(live: &[Arc<Value>]) -> HashMap<(&str, &str), Vec<&Value>> {
    let mut grouped: HashMap<(&str, &str), Vec<&Value>> = HashMap::new();
    for secret in live.iter().map(|o| &**o).filter(|o| record::is_record(o)) {
        let release = label(secret, LABEL_RELEASE).unwrap_or_default();
        grouped.entry((namespace_of(secret).unwrap_or_default(), release)).or_default().push(secret);
    }
    grouped
}

/// Whether a record's manifests and `manifests` hold the same objects, in any order. Both are
/// as the server stores them (records are written so).
fn same_objects(recorded: &[Value], manifests: &[&Value]) -> bool {
    // Mostly they are in the same order too: then no object needs its key.
    if recorded.len() == manifests.len() && recorded.iter().zip(manifests).all(|(r, m)| r == *m) {
        return true;
    }
    let index: HashMap<ObjectKeyRef, &Value> = recorded.iter().map(|m| (ObjectKeyRef::of(m), m)).collect();
    recorded.len() == manifests.len()
        && index.len() == manifests.len()
        && manifests.iter().all(|m| index.get(&ObjectKeyRef::of(m)).is_some_and(|r| r == m))
}

/// Whether `last` is signed by the key this apply signs with (when it has one): an unsigned
/// record, or one another key signed, is written again signed, as `weaver promote`'s `signed`
/// gate asks.
fn signed_as_asked(last: &Record, options: &ApplyOptions) -> bool {
    options.record_key.as_ref().is_none_or(|key| key.signed(last.signature.as_deref()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::same_objects;

    #[test]
    fn same_objects_in_any_order_and_nothing_else() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}});
        let b = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b", "namespace": "n"}});
        let mut changed = b.clone();
        changed["spec"] = json!({"type": "NodePort"});
        let recorded = [a.clone(), b.clone()];
        assert!(same_objects(&recorded, &[&a, &b]));
        assert!(same_objects(&recorded, &[&b, &a]));
        assert!(!same_objects(&recorded, &[&a, &changed]));
        assert!(!same_objects(&recorded, &[&changed, &a]));
        assert!(!same_objects(&recorded, &[&a]));
        assert!(!same_objects(&recorded, &[&a, &b, &a]));
    }
}
