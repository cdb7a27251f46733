//! Plans: what an apply of rendered releases would do to each object, given the live objects
//! and the releases' last applied records (observed by `engine::observe`, or read from a
//! file). Pure: no I/O.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::ignore::{respect, rules_for};
use crate::diff::{
    Change, Kind, applies_unchanged, as_stored, changes, client_merge, key_problem, normalize, redact_secret_values,
};
use crate::release::adopt::{HelmRelease, installed_by};
use crate::release::fingerprint::Fingerprint;
use crate::release::record::{self, Record, Records};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_RELEASE, ObjectKey, ObjectKeyRef, label};
use weaver_helm::hooks;
use weaver_project::IgnoreRule;
use weaver_project::RenderedRelease;

/// Objects carrying this annotation are never pruned, so never planned for deletion.
pub const PRUNE_ANNOTATION: &str = "weaver.example.com/prune";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
}

/// What would happen to one object.
#[derive(Debug, Clone)]
pub struct ObjectPlan {
    pub release: String,
    pub api_version: String,
    pub key: ObjectKey,
    pub action: Action,
    /// The live object, normalized, Secret values replaced by markers (None when not live).
    pub before: Option<Value>,
    /// The object after the apply, normalized and redacted the same way (None for a delete).
    pub after: Option<Value>,
    /// For updates: the field paths that change.
    pub changes: Vec<Change>,
    /// Server mode: the server reports that the apply would take fields from another manager.
    pub conflict: Option<String>,
    /// Helm installed it, and the release adopts it from Helm: an apply sends it (forced, to
    /// take Helm's fields) even when nothing else changes, and the labels weaver sets instead of
    /// Helm's are not shown as changes (the adoption says it once, see [`Adoption`]).
    pub adopt: bool,
    /// How many field changes `ignoreDifferences` kept out of `changes` (and out of the apply).
    pub ignored: usize,
    /// The live object is labelled as another environment's: an apply refuses it, unless it
    /// takes ownership (`--take-ownership`), and then relabels it as this environment's.
    pub owner: Option<Owner>,
    /// The desired object (prepared, not redacted), which the release record keeps: never printed.
    /// Shared: a plan kept between views ([`KeptPlans`]) is handed out again without a copy.
    pub desired: Option<Arc<Value>>,
    /// What an apply sends instead of `desired` to the existing object: live values at the
    /// fields `ignoreDifferences` ignores. None when that is `desired`.
    pub respected: Option<Value>,
}

/// Who owns a live object by weaver's labels: the environment and release it is labelled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub environment: String,
    pub release: String,
}

impl Owner {
    /// The live object's owner when its environment label names another environment than the
    /// desired object's. Objects carry no lock namespace: two projects' environments of one
    /// name cannot be told apart by the object, and count as one.
    fn other_than(desired: &Value, live: &Value) -> Option<Owner> {
        let (ours, theirs) = (label(desired, LABEL_ENVIRONMENT)?, label(live, LABEL_ENVIRONMENT)?);
        (ours != theirs).then(|| Owner {
            environment: theirs.to_string(),
            release: label(live, LABEL_RELEASE).unwrap_or_default().to_string(),
        })
    }
}

impl ObjectPlan {
    /// The plan of `action` on `key`, nothing else said yet: no sides, changes, conflict, owner
    /// or adoption.
    pub fn new(release: &str, api_version: String, key: ObjectKey, action: Action) -> ObjectPlan {
        ObjectPlan {
            release: release.to_string(),
            api_version,
            key,
            action,
            before: None,
            after: None,
            changes: Vec::new(),
            conflict: None,
            adopt: false,
            ignored: 0,
            owner: None,
            desired: None,
            respected: None,
        }
    }

    /// What an apply sends.
    pub fn to_send(&self) -> Option<&Value> {
        self.respected.as_ref().or(self.desired.as_deref())
    }
}

/// A release that takes over what the Helm release of the same name installed in its
/// namespace (see `crate::release::adopt`).
#[derive(Debug, Clone)]
pub struct Adoption {
    pub release: String,
    pub namespace: String,
    pub helm: HelmRelease,
    /// Weaver applied the release before (it has a deployed record): the objects are weaver's
    /// already, only Helm's records are left (for `--forget-helm-release`).
    pub adopted_before: bool,
    /// How many of the release's objects Helm installed.
    pub objects: usize,
    /// Live objects Helm installed for it (of the kinds and namespaces the release renders)
    /// that the release does not render: left in place, Helm's, never pruned by weaver.
    pub left: Vec<(String, ObjectKey)>,
}

/// A Helm hook of a planned release: not an object to create, update or prune, but one an
/// apply runs (or not) around the release's objects.
#[derive(Debug, Clone)]
pub struct HookPlan {
    pub release: String,
    pub api_version: String,
    pub key: ObjectKey,
    pub events: Vec<hooks::Event>,
    pub weight: i64,
    pub delete_policies: Vec<hooks::DeletePolicy>,
    /// The events of this apply that run it, in order; empty when it does not run (the
    /// release does not change, or its lifecycle fires none of the hook's events).
    pub runs: Vec<hooks::Event>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub objects: Vec<ObjectPlan>,
    /// Each release's hooks: those that run, in the order they run, then the others.
    pub hooks: Vec<HookPlan>,
    /// The releases adopted from Helm, in release order.
    pub adoptions: Vec<Adoption>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for object in &self.objects {
            match object.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
                Action::Unchanged => summary.unchanged += 1,
            }
        }
        summary
    }
}

fn kind_of(object: &Value) -> Kind<'_> {
    Kind {
        api_version: object.get("apiVersion").and_then(Value::as_str).unwrap_or_default(),
        kind: object.get("kind").and_then(Value::as_str).unwrap_or_default(),
    }
}

/// Plans one object in client mode: `desired` prepared, `live` as listed, `last_applied`
/// prepared, under the `ignoreDifferences` rules that select it.
fn plan_object(
    release: &str,
    desired: Option<Value>,
    live: Option<&Value>,
    last_applied: Option<&Value>,
    adopt: bool,
    rules: &[&IgnoreRule],
) -> ObjectPlan {
    let respected = desired.as_ref().zip(live).and_then(|(d, l)| respect(rules, d, l, last_applied));
    let Some(sent) = respected else { return plan_sent(release, desired, live, last_applied, adopt) };
    // The changes the rules keep out: those of the desired object that the sent one lacks.
    let unrespected = plan_sent(release, desired.clone(), live, last_applied, adopt);
    let mut plan = plan_sent(release, Some(sent), live, last_applied, adopt);
    plan.ignored = unrespected.changes.iter().filter(|c| !plan.changes.contains(c)).count();
    plan.respected = plan.desired.take().map(Arc::unwrap_or_clone);
    plan.desired = desired.map(Arc::new);
    plan
}

/// Plans one object that an apply sends as `desired`.
fn plan_sent(
    release: &str,
    desired: Option<Value>,
    live: Option<&Value>,
    last_applied: Option<&Value>,
    adopt: bool,
) -> ObjectPlan {
    if let (Some(wanted), Some(live)) = (&desired, live)
        && !adopt
        && let kind = kind_of(wanted)
        && applies_unchanged(wanted, live, last_applied, kind)
    {
        // What the merge would find, without merging and normalizing both sides.
        let unchanged =
            ObjectPlan::new(release, kind.api_version.to_string(), ObjectKey::of(wanted), Action::Unchanged);
        return ObjectPlan { desired: desired.map(Arc::new), ..unchanged };
    }
    let after = desired.as_ref().map(|d| live.map_or_else(|| d.clone(), |l| client_merge(d, l, last_applied)));
    compare(release, live, after, desired, adopt)
}

/// The labels weaver sets on every object, which replace Helm's `managed-by` on an adopted one.
const WEAVER_LABELS: [&str; 3] = [LABEL_MANAGED_BY, LABEL_RELEASE, LABEL_ENVIRONMENT];

/// An adopted object's side without the labels the adoption changes.
fn without_weaver_labels(object: &mut Value) {
    let Some(Value::Object(labels)) = object.pointer_mut("/metadata/labels") else { return };
    for name in WEAVER_LABELS {
        labels.shift_remove(name);
    }
    if labels.is_empty()
        && let Some(Value::Object(meta)) = object.get_mut("metadata")
    {
        meta.shift_remove("labels");
    }
}

/// The plan of one object from the live object and the object after the apply (both raw).
fn compare(
    release: &str,
    live: Option<&Value>,
    after: Option<Value>,
    desired: Option<Value>,
    adopt: bool,
) -> ObjectPlan {
    let reference = desired.as_ref().or(live).expect("an object is desired or live");
    let key = ObjectKey::of(reference);
    let api_version = kind_of(reference).api_version.to_string();
    let mut before = live.map(|live| normalize(live.clone()));
    let mut after = after.map(normalize);
    if adopt {
        before.iter_mut().chain(after.iter_mut()).for_each(without_weaver_labels);
    }
    let (action, changes) = match (&before, &after) {
        (None, _) => (Action::Create, Vec::new()),
        (Some(_), None) => (Action::Delete, Vec::new()),
        (Some(b), Some(a)) if b == a => (Action::Unchanged, Vec::new()),
        (Some(b), Some(a)) => (Action::Update, changes(b, a, kind_of(a))),
    };
    if action == Action::Unchanged {
        // Nothing to show; keeping 3,000 copies of unchanged objects helps nobody.
        before = None;
        after = None;
    }
    redact_secret_values(before.as_mut(), after.as_mut());
    ObjectPlan {
        before,
        after,
        changes,
        adopt,
        desired: desired.map(Arc::new),
        ..ObjectPlan::new(release, api_version, key, action)
    }
}

/// What changed from one recorded revision of a release to the next, object by object, as a
/// plan shows an apply: `before` and `after` are the two revisions' applied manifests, each
/// with whether it holds a decrypted value outside a Secret's data (see
/// [`Record::applied_manifests`]), in `after`'s order, then what `after` no longer has. Such an
/// object shows the paths that changed and never its values, as drift shows it: the keys that
/// would recognise an old value may be gone.
pub fn between_revisions<'a>(
    release: &str,
    before: impl IntoIterator<Item = (&'a Value, bool)>,
    after: impl IntoIterator<Item = (&'a Value, bool)>,
) -> Plan {
    let before: Vec<(&Value, bool)> = before.into_iter().collect();
    let mut earlier: HashMap<ObjectKey, usize> =
        before.iter().enumerate().map(|(at, (object, _))| (ObjectKey::of(object), at)).collect();
    let mut objects: Vec<ObjectPlan> = after
        .into_iter()
        .map(|(object, sensitive)| {
            let was = earlier.remove(&ObjectKey::of(object)).map(|at| before[at]);
            let then = was.map(|(object, _)| as_stored(object.clone()));
            let now = as_stored(object.clone());
            let plan = compare(release, then.as_ref(), Some(now.clone()), Some(now), false);
            values_hidden(plan, sensitive || was.is_some_and(|(_, sensitive)| sensitive))
        })
        .collect();
    let mut gone: Vec<usize> = earlier.into_values().collect();
    gone.sort_unstable();
    objects.extend(gone.into_iter().map(|at| {
        let (object, sensitive) = before[at];
        values_hidden(compare(release, Some(&as_stored(object.clone())), None, None, false), sensitive)
    }));
    Plan { objects, ..Plan::default() }
}

/// `plan` without its sides when `sensitive`: its changed paths alone are shown.
fn values_hidden(mut plan: ObjectPlan, sensitive: bool) -> ObjectPlan {
    if sensitive {
        plan.before = None;
        plan.after = None;
    }
    plan.desired = None;
    plan
}

fn prune_disabled(object: &Value) -> bool {
    object.pointer("/metadata/annotations").and_then(|a| a.get(PRUNE_ANNOTATION)).and_then(Value::as_str)
        == Some("disabled")
}

/// Releases' rendered objects planned earlier, each under the [`Fingerprint`] of what its plan
/// read: a long-running reader's (`weaver ui`'s) between views, so that a release is planned
/// again only when its record, render or live objects changed.
pub trait KeptPlans: Sync {
    /// The objects of `release` planned with `fingerprint`, if they are kept.
    fn planned(&self, release: &str, fingerprint: u64) -> Option<Vec<ObjectPlan>>;
    /// Keeps `planned` for `release`, in place of what was kept.
    fn keep_planned(&self, release: &str, fingerprint: u64, planned: Vec<ObjectPlan>);
}

/// Plans every object of `releases` against `live` objects (records among them are used, not
/// planned). Deletions come from the releases' last deployed records.
pub fn plan_against(releases: &[RenderedRelease], environment: &str, live: &[Value]) -> Result<Plan> {
    plan_with_records(releases, &record::last_deployed(live, environment)?, live)
}

/// Plans every object of `releases` against `live` objects, given their last deployed records.
///
/// # Errors
/// A desired object with a keyed list that server-side apply would reject (an element without
/// its key, or one twice).
pub fn plan_with_records(releases: &[RenderedRelease], records: &Records, live: &[Value]) -> Result<Plan> {
    plan_adopting(releases, records, live, &HashMap::new(), None)
}

/// [`plan_with_records`], where `helm` names the Helm release of the same name found for some
/// releases: a release without a deployed record adopts what that Helm release installed (its
/// objects are sent, forced; see [`Adoption`]). Where `kept` holds a release's rendered objects
/// planned against the same record, render and live objects, they are not planned again.
pub fn plan_adopting<L: Borrow<Value> + Sync>(
    releases: &[RenderedRelease],
    records: &Records,
    live: &[L],
    helm: &HashMap<String, HelmRelease>,
    kept: Option<&dyn KeptPlans>,
) -> Result<Plan> {
    let live_by_key: HashMap<ObjectKeyRef, &Value> =
        live.iter().map(L::borrow).filter(|o| !record::is_record(o)).map(|o| (ObjectKeyRef::of(o), o)).collect();
    // Each release's rendered objects planned on the thread pool: most of a large plan's cost,
    // and no release's depends on another's.
    let rendered: Vec<Result<Vec<(ObjectKeyRef, ObjectPlan)>>> = releases
        .par_iter()
        .map(|release| {
            let (record, helm) = (records.get(&release.name).map(|r| &**r), helm.get(&release.name));
            let Some(kept) = kept else { return plan_rendered(release, record, &live_by_key, helm) };
            let mut fingerprint = Fingerprint::of(record);
            fingerprint.add(helm.map(|h| (h.revision, &h.status)));
            for manifest in &release.manifests {
                fingerprint.content(&manifest.object);
                fingerprint.live(live_by_key.get(&ObjectKeyRef::of(&manifest.object)).copied());
            }
            let fingerprint = fingerprint.finish();
            let keys = release.manifests.iter().map(|m| ObjectKeyRef::of(&m.object));
            if let Some(planned) = kept.planned(&release.name, fingerprint) {
                return Ok(keys.zip(planned).collect());
            }
            let planned = plan_rendered(release, record, &live_by_key, helm)?;
            kept.keep_planned(&release.name, fingerprint, planned.iter().map(|(_, p)| p.clone()).collect());
            Ok(planned)
        })
        .collect();
    let mut plan = Plan::default();
    // Every object and hook the releases render, once some release has something to delete.
    let mut rendered_anywhere: Option<HashSet<ObjectKeyRef>> = None;
    for (release, rendered) in releases.iter().zip(rendered) {
        let record = records.get(&release.name).map(|r| &**r);
        let mut desired_keys = HashSet::new();
        let release_start = plan.objects.len();
        let helm = helm.get(&release.name);
        let adopting = helm.filter(|_| record.is_none());
        for (key, planned) in rendered? {
            plan.objects.push(planned);
            desired_keys.insert(key);
        }
        if let Some(helm) = helm {
            let objects = plan.objects[release_start..].iter().filter(|o| o.adopt).count();
            let mut left: Vec<(String, ObjectKey)> = live
                .iter()
                .map(L::borrow)
                .filter(|o| adopting.is_some() && installed_by(o, helm))
                .filter(|o| !desired_keys.contains(&ObjectKeyRef::of(o)))
                .map(|o| (kind_of(o).api_version.to_string(), ObjectKey::of(o)))
                .collect();
            left.sort_by(|a, b| a.1.cmp(&b.1));
            plan.adoptions.push(Adoption {
                release: release.name.clone(),
                namespace: release.namespace.clone(),
                helm: helm.clone(),
                adopted_before: adopting.is_none(),
                objects,
                left,
            });
        }
        let planned = plan.objects.len() - release_start;
        // A hook is never pruned, even when a record written before weaver ran hooks holds it
        // as an object.
        desired_keys.extend(release.hooks.iter().map(|hook| ObjectKeyRef::of(&hook.object)));
        if let Some(record) = record {
            for recorded in &record.manifests {
                let key = ObjectKeyRef::of(recorded);
                if desired_keys.contains(&key) {
                    continue;
                }
                // Only an object still labelled as this release's, of this environment, is
                // deleted; one another release of this apply renders moves to it (a renamed
                // release), rather than being deleted while that release applies it.
                let Some(live) = live_by_key.get(&key).filter(|l| {
                    !prune_disabled(l)
                        && label(l, LABEL_RELEASE) == Some(&release.name)
                        && label(l, LABEL_ENVIRONMENT) == Some(&record.environment)
                }) else {
                    continue;
                };
                let elsewhere = rendered_anywhere.get_or_insert_with(|| {
                    releases
                        .iter()
                        .flat_map(|r| r.manifests.iter().chain(&r.hooks))
                        .map(|m| ObjectKeyRef::of(&m.object))
                        .collect()
                });
                if !elsewhere.contains(&key) {
                    plan.objects.push(plan_object(&release.name, None, Some(live), None, false, &[]));
                }
            }
        }
        let objects = &plan.objects[release_start..];
        let hooks: Vec<Value> = release.hooks.iter().map(|h| as_stored(h.object.clone())).collect();
        // As apply decides: a release runs hooks when its objects or its hooks change, or it
        // has no deployed record yet.
        let changes = record.is_none_or(|r| !r.has_hooks(&hooks) || r.manifests.len() != planned)
            || objects.iter().any(|o| o.action != Action::Unchanged);
        // A release adopted from Helm is deployed already: its upgrade hooks run, not its
        // install hooks.
        let lifecycle = hooks::Lifecycle::of(release.installed, record.is_some() || helm.is_some(), false);
        let hooks = match lifecycle {
            hooks::Lifecycle::Delete => record.map(|r| r.hooks.clone()).unwrap_or_default(),
            _ => hooks,
        };
        plan.hooks.extend(plan_hooks(&release.name, &hooks, changes.then_some(lifecycle)));
    }
    Ok(plan)
}

/// The objects `release` renders, planned against `live` and its `record`, with their keys;
/// adopted from `helm` when the release has no record yet and Helm installed them.
fn plan_rendered<'a>(
    release: &'a RenderedRelease,
    record: Option<&Record>,
    live_by_key: &HashMap<ObjectKeyRef, &Value>,
    helm: Option<&HelmRelease>,
) -> Result<Vec<(ObjectKeyRef<'a>, ObjectPlan)>> {
    // Records hold objects as stored (see `apply::records`).
    let last_applied: HashMap<ObjectKeyRef, &Value> =
        record.map(|r| r.manifests.iter().map(|m| (ObjectKeyRef::of(m), m)).collect()).unwrap_or_default();
    let adopting = helm.filter(|_| record.is_none());
    let mut planned = Vec::with_capacity(release.manifests.len());
    for manifest in &release.manifests {
        let desired = as_stored(manifest.object.clone());
        let key = ObjectKeyRef::of(&manifest.object);
        if let Some((what, keys)) = key_problem(&desired, kind_of(&desired)) {
            let key = ObjectKey::from(key);
            let error =
                Error::at(Location::file(&manifest.source), format!("{key} (release {}): {what}", release.name));
            return Err(error.with_help(format!(
                "server-side apply tells the elements of this list apart by {keys}: each needs one, and a different one"
            )));
        }
        let live = live_by_key.get(&key).copied();
        let adopt = adopting.zip(live).is_some_and(|(helm, live)| installed_by(live, helm));
        let rules = rules_for(&release.ignore_differences, key);
        let owner = live.and_then(|live| Owner::other_than(&desired, live));
        let mut object =
            plan_object(&release.name, Some(desired), live, last_applied.get(&key).copied(), adopt, &rules);
        object.owner = owner;
        planned.push((key, object));
    }
    Ok(planned)
}

/// The hooks of one release: those `lifecycle` runs, in the order it runs them (before the
/// objects, then after), then the others by weight and name.
fn plan_hooks(release: &str, hooks: &[Value], lifecycle: Option<hooks::Lifecycle>) -> Vec<HookPlan> {
    let mut planned: Vec<HookPlan> = Vec::new();
    let mut add = |object: &Value, spec: hooks::Spec, event: Option<hooks::Event>| {
        let key = ObjectKey::of(object);
        match planned.iter_mut().find(|p| p.key == key) {
            Some(known) => known.runs.extend(event),
            None => planned.push(HookPlan {
                release: release.to_string(),
                api_version: kind_of(object).api_version.to_string(),
                key,
                events: spec.events,
                weight: spec.weight,
                delete_policies: spec.delete_policies,
                runs: event.into_iter().collect(),
            }),
        }
    };
    for event in lifecycle.map(hooks::Lifecycle::events).into_iter().flatten() {
        for (object, spec) in hooks::for_event(hooks, event) {
            add(object, spec, Some(event));
        }
    }
    let mut rest: Vec<(&Value, hooks::Spec)> = hooks.iter().filter_map(|h| Some((h, hooks::Spec::of(h)?))).collect();
    rest.sort_by(|(a, sa), (b, sb)| sa.weight.cmp(&sb.weight).then_with(|| ObjectKey::of(a).cmp(&ObjectKey::of(b))));
    for (object, spec) in rest {
        add(object, spec, None);
    }
    planned
}

/// How many objects a refusal to take them names; the rest are counted.
const NAMED_TAKEN: usize = 10;

impl Plan {
    /// The objects labelled as another environment's (see [`Owner`]).
    pub fn owned_elsewhere(&self) -> impl Iterator<Item = (&ObjectPlan, &Owner)> {
        self.objects.iter().filter_map(|o| Some((o, o.owner.as_ref()?)))
    }

    /// Refuses a plan of `environment` that would take objects labelled as another
    /// environment's: each environment's next apply would take them back, and its prune or drift
    /// would act on what the other owns. `then` says what became of the run.
    ///
    /// # Errors
    /// Naming the objects (at most ten), both environments and both releases.
    pub fn refuse_taking(&self, environment: &str, then: &str) -> Result<()> {
        let taken: Vec<String> = self
            .owned_elsewhere()
            .map(|(o, owner)| {
                format!(
                    "{} {} (release {}) is environment `{}`'s (release {})",
                    o.api_version, o.key, o.release, owner.environment, owner.release
                )
            })
            .collect();
        if taken.is_empty() {
            return Ok(());
        }
        let count = taken.len();
        let more = match count.saturating_sub(NAMED_TAKEN) {
            0 => String::new(),
            more => format!("\n  and {more} more"),
        };
        Err(Error::new(format!(
            "environment `{environment}` would take {count} object(s) from another environment, each applying its own over the other's; {then}:\n  {}{more}",
            taken[..count.min(NAMED_TAKEN)].join("\n  ")
        ))
        .with_help(format!(
            "remove the object(s) from one of the environments, or pass --take-ownership to move them to environment `{environment}`"
        )))
    }
}

impl Plan {
    /// The objects server mode asks the server about, with what an apply would send and their
    /// release: those client mode creates or updates, and those adopted from Helm. Client mode orders lists as the server
    /// does (`applied_order`), so an object whose only change is a list's order is among them.
    pub fn server_candidates(&self) -> Vec<(usize, (&Value, &str))> {
        let changed = self
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o.action, Action::Create | Action::Update) || o.adopt);
        changed.filter_map(|(index, o)| Some((index, (o.to_send()?, o.release.as_str())))).collect()
    }

    /// Server mode: the server's answer to a dry-run apply of object `index` (`result`, and
    /// the `conflict` an apply without force hit) replaces the client's merge.
    pub fn refine(
        &mut self,
        live: &[impl Borrow<Value>],
        answers: impl IntoIterator<Item = (usize, Value, Option<String>)>,
    ) {
        let live_by_key: HashMap<ObjectKey, &Value> =
            live.iter().map(Borrow::borrow).map(|o| (ObjectKey::of(o), o)).collect();
        for (index, result, conflict) in answers {
            let object = &self.objects[index];
            if object.action == Action::Create {
                // Validated by the dry run; shown as desired, like client mode, rather than with
                // every default and allocated field of a new object.
                continue;
            }
            let live = live_by_key.get(&object.key).copied();
            let (adopt, ignored, owner) = (object.adopt, object.ignored, object.owner.clone());
            let desired = self.objects[index].desired.take().map(Arc::unwrap_or_clone);
            let respected = self.objects[index].respected.take();
            let refined = compare(&self.objects[index].release, live, Some(result), desired, adopt);
            // An adopted object is applied with force: Helm's fields are taken, as are any others.
            let conflict = conflict.filter(|_| !adopt);
            self.objects[index] = ObjectPlan { conflict, ignored, respected, owner, ..refined };
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diff::ChangeOp;
    use weaver_core::manifest::Manifest;

    #[test]
    fn a_revision_is_planned_over_the_one_before_with_values_redacted_as_a_plan_redacts_them() {
        let config = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"k": value}});
        let secret = |value: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "stringData": {"pw": value}});
        let gone = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": "n"}});
        let copied = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copied", "namespace": "n"}, "data": {"v": value}});
        let before = [(config("1"), false), (secret("old-pass"), false), (gone, false), (copied("old-pass"), true)];
        let after =
            [(config("2"), false), (secret("new-pass"), false), (copied("new-pass"), true), (config("1"), false)];
        let mut added = after[3].0.clone();
        added["metadata"]["name"] = json!("added");
        let after = [after[0].clone(), after[1].clone(), after[2].clone(), (added, false)];
        let plan = between_revisions("web", before.iter().map(|(o, s)| (o, *s)), after.iter().map(|(o, s)| (o, *s)));
        let actions: Vec<(&str, Action)> = plan.objects.iter().map(|o| (o.key.name.as_str(), o.action)).collect();
        assert_eq!(
            actions,
            [
                ("c", Action::Update),
                ("s", Action::Update),
                ("copied", Action::Update),
                ("added", Action::Create),
                ("gone", Action::Delete)
            ]
        );
        let shown = format!("{:?}", plan.objects.iter().map(|o| (&o.before, &o.after)).collect::<Vec<_>>());
        assert!(!shown.contains("pass") && !shown.contains("cGFzc"), "{shown}");
        assert_eq!(plan.objects[1].after.as_ref().unwrap()["data"]["pw"], crate::diff::SECRET_CHANGED_MARKER);
        let copied = &plan.objects[2];
        assert!(copied.before.is_none() && copied.after.is_none(), "its values never show");
        assert_eq!(copied.changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["data.v"]);
        assert!(plan.objects.iter().all(|o| o.desired.is_none()), "nothing to apply is kept");
    }

    fn config_map(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop"}, "data": data})
    }

    #[test]
    fn plans_desired_against_live_and_the_last_applied_record_without_a_server() {
        let desired = [
            config_map("changed", json!({"kept": "1", "value": "new"})),
            config_map("new", json!({"a": "1"})),
            config_map("same", json!({"a": "1"})),
        ];
        let rendered = |name: &str, objects: &[Value]| RenderedRelease {
            name: name.into(),
            namespace: "shop".into(),
            chart: name.into(),
            chart_meta: None,
            installed: true,
            manifests: objects
                .iter()
                .map(|object| Manifest {
                    release: name.into(),
                    source: "charts/web/templates/cm.yaml".into(),
                    document: 0,
                    object: object.clone(),
                    patched_by: Vec::new(),
                })
                .collect(),
            hooks: Vec::new(),
            warnings: Vec::new(),
            ignore_differences: Vec::new(),
            values: Default::default(),
        };
        let release = rendered("web", &desired);
        // `moved` now belongs to another release of this apply; `taken` is labelled as another's, and
        // `other-environment` as another environment's.
        let other = rendered("api", &[config_map("moved", json!({}))]);
        let labelled_in = |environment: &str, release: &str, mut object: Value| {
            object["metadata"]["labels"] = json!({LABEL_RELEASE: release, LABEL_ENVIRONMENT: environment});
            object
        };
        let labelled = |release: &str, object: Value| labelled_in("dev", release, object);
        let mut kept = labelled("web", config_map("kept-by-annotation", json!({})));
        kept["metadata"]["annotations"] = json!({PRUNE_ANNOTATION: "disabled"});
        // Last applied: `dropped` was set by weaver and is no longer desired; `gone` and
        // `kept-by-annotation` were applied and are no longer rendered.
        let last_applied = [
            config_map("changed", json!({"kept": "1", "value": "old", "dropped": "x"})),
            config_map("gone", json!({})),
            kept.clone(),
            config_map("moved", json!({})),
            config_map("taken", json!({})),
            config_map("other-environment", json!({})),
        ];
        let live = vec![
            // Another manager's field (`theirs`) stays; weaver's dropped field goes.
            config_map("changed", json!({"kept": "1", "value": "old", "dropped": "x", "theirs": "y"})),
            config_map("same", json!({"a": "1"})),
            labelled("web", config_map("gone", json!({}))),
            kept,
            labelled("web", config_map("moved", json!({}))),
            labelled("api", config_map("taken", json!({}))),
            labelled_in("prod", "web", config_map("other-environment", json!({}))),
        ];
        let record = Record { revision: 3, ..Record::of_manifests(last_applied.to_vec()) };
        let records = HashMap::from([("web".to_string(), Arc::new(record))]);
        let plan = plan_with_records(&[release, other], &records, &live).unwrap();
        let actions: Vec<(&str, &str, Action)> =
            plan.objects.iter().map(|o| (o.release.as_str(), o.key.name.as_str(), o.action)).collect();
        assert_eq!(
            actions,
            [
                ("web", "changed", Action::Update),
                ("web", "new", Action::Create),
                ("web", "same", Action::Unchanged),
                ("web", "gone", Action::Delete),
                // The test's desired objects carry no labels: the live one's label is not a change.
                ("api", "moved", Action::Unchanged),
            ]
        );
        let changes: Vec<(&str, ChangeOp)> = plan.objects[0].changes.iter().map(|c| (c.path.as_str(), c.op)).collect();
        assert_eq!(changes, [("data.dropped", ChangeOp::Remove), ("data.value", ChangeOp::Replace)]);
        assert_eq!(plan.objects[0].after.as_ref().unwrap()["data"]["theirs"], "y");
        let summary = plan.summary();
        assert_eq!((summary.create, summary.update, summary.delete, summary.unchanged), (1, 1, 1, 2));
        // Server mode would ask about the create and the update only.
        let asked: Vec<usize> = plan.server_candidates().into_iter().map(|(index, _)| index).collect();
        assert_eq!(asked, [0, 1]);
    }

    #[test]
    fn an_object_labelled_as_another_environment_s_is_refused_naming_both_unless_taken() {
        let labelled = |environment: &str, release: &str, data: Value| {
            let mut object = config_map("shared", data);
            object["metadata"]["labels"] = json!({LABEL_RELEASE: release, LABEL_ENVIRONMENT: environment});
            object
        };
        let release = RenderedRelease {
            name: "web".into(),
            namespace: "shop".into(),
            chart: "web".into(),
            chart_meta: None,
            installed: true,
            manifests: vec![Manifest {
                release: "web".into(),
                source: "charts/web/templates/cm.yaml".into(),
                document: 0,
                object: labelled("staging", "web", json!({"a": "1"})),
                patched_by: Vec::new(),
            }],
            hooks: Vec::new(),
            warnings: Vec::new(),
            ignore_differences: Vec::new(),
            values: Default::default(),
        };
        let plan_with =
            |live: Value| plan_with_records(std::slice::from_ref(&release), &HashMap::new(), &[live]).unwrap();
        // Another release of the same environment: a move, not a conflict.
        let moved = plan_with(labelled("staging", "api", json!({"a": "1"})));
        assert_eq!(moved.owned_elsewhere().count(), 0);
        assert!(moved.refuse_taking("staging", "nothing was applied").is_ok());
        let taken = plan_with(labelled("prod", "api", json!({"a": "1"})));
        assert_eq!(taken.objects[0].owner, Some(Owner { environment: "prod".into(), release: "api".into() }));
        assert_eq!(taken.objects[0].action, Action::Update, "its labels change");
        let err = taken.refuse_taking("staging", "nothing was applied").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment `staging` would take 1 object(s) from another environment, each applying its own over the other's; nothing was applied:\n  v1 ConfigMap shop/shared (release web) is environment `prod`'s (release api)"
        );
        assert!(err.help.unwrap().contains("--take-ownership"));
    }
}
