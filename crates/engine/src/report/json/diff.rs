//! `weaver diff -o json`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use weaver_plan::diff::Change;
use weaver_plan::plan::{Action, Plan, Summary as PlanSummary};
use weaver_secrets::redact::Redactor;

use super::ObjectIdentity;
use crate::report::{DiffContext, object_diff};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport<'a> {
    pub schema_version: u32,
    pub environment: Cow<'a, str>,
    pub mode: Cow<'a, str>,
    /// The full SHA of the commit rendered from (`--rev`'s, else HEAD's); null outside git.
    pub commit: Option<Cow<'a, str>>,
    /// Whether the working tree differed from `commit` (never under `--rev`); null outside git.
    pub dirty: Option<bool>,
    /// `--base`: the commit whose render the objects are compared with, in place of a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Cow<'a, str>>,
    pub summary: PlanSummary,
    pub objects: Vec<DiffObject<'a>>,
    /// Helm hooks: run by an apply around their release's objects, never created, updated
    /// or pruned as objects.
    pub hooks: Vec<DiffHook<'a>>,
    /// The releases an apply adopts from the Helm release of the same name.
    pub adoptions: Vec<DiffAdoption<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffAdoption<'a> {
    pub release: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub helm_release: Cow<'a, str>,
    pub helm_revision: u32,
    pub helm_status: Cow<'a, str>,
    /// How many of the release's objects Helm installed (each has `"adopted": true`).
    pub objects: usize,
    /// Objects Helm installed for it that the release does not render: left in place.
    pub not_rendered: Vec<ObjectIdentity<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffHook<'a> {
    pub release: Cow<'a, str>,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub events: Cow<'a, [weaver_helm::hooks::Event]>,
    pub weight: i64,
    pub delete_policies: Cow<'a, [weaver_helm::hooks::DeletePolicy]>,
    /// The events of this apply that run it; empty when it does not run.
    pub runs: Cow<'a, [weaver_helm::hooks::Event]>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffObject<'a> {
    pub action: Action,
    pub release: Cow<'a, str>,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub changes: Cow<'a, [Change]>,
    /// The lines `diff` adds and removes (both 0 when unchanged).
    pub lines: LineCounts,
    pub conflict: Option<String>,
    pub diff: Option<String>,
    /// Helm installed it and the apply takes it over (see `adoptions`): sent, with force,
    /// even when `unchanged`.
    pub adopted: bool,
    /// Field changes `ignoreDifferences` kept out of `changes` (an apply sends the live values).
    pub ignored: usize,
    /// The live object is labelled as another environment's: an apply refuses the plan unless
    /// it takes ownership (`--take-ownership`). Absent when it is not.
    #[serde(rename = "ownedBy", default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<weaver_plan::plan::Owner>,
}

impl DiffReport<'_> {
    /// Whether an apply would change something: an object to create, update or delete, or to
    /// take over from Helm.
    pub fn has_changes(&self) -> bool {
        self.objects.iter().any(|o| o.action != Action::Unchanged || o.adopted)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LineCounts {
    pub added: usize,
    pub removed: usize,
}

impl<'a> DiffReport<'a> {
    /// Texts are redacted here, before JSON escapes them: an escaped secret (a quote or a
    /// backslash in it) no longer reads as the value the redactor knows.
    pub fn new(plan: &'a Plan, context: &DiffContext<'a>, redactor: &Redactor) -> DiffReport<'a> {
        let objects = plan
            .objects
            .iter()
            .map(|object| {
                let diff = object_diff(object);
                DiffObject {
                    action: object.action,
                    release: (&object.release).into(),
                    object: ObjectIdentity::new(&object.api_version, &object.key),
                    changes: (&object.changes).into(),
                    lines: diff
                        .as_ref()
                        .map_or_else(LineCounts::default, |d| LineCounts { added: d.added, removed: d.removed }),
                    conflict: object.conflict.as_deref().map(|c| redactor.redact(c).into_owned()),
                    diff: diff.map(|d| redactor.redact(&d.text).into_owned()),
                    adopted: object.adopt,
                    ignored: object.ignored,
                    owner: object.owner.clone(),
                }
            })
            .collect();
        let (commit, dirty) = super::commit_of(context.provenance);
        DiffReport {
            schema_version: 1,
            environment: context.environment.into(),
            mode: context.mode.into(),
            commit,
            dirty,
            base: context.base.map(Cow::Borrowed),
            summary: plan.summary(),
            objects,
            hooks: plan
                .hooks
                .iter()
                .map(|h| DiffHook {
                    release: (&h.release).into(),
                    object: ObjectIdentity::new(&h.api_version, &h.key),
                    events: (&h.events).into(),
                    weight: h.weight,
                    delete_policies: (&h.delete_policies).into(),
                    runs: (&h.runs).into(),
                })
                .collect(),
            adoptions: plan
                .adoptions
                .iter()
                .filter(|a| !a.adopted_before)
                .map(|a| DiffAdoption {
                    release: (&a.release).into(),
                    namespace: (&a.namespace).into(),
                    helm_release: (&a.helm.name).into(),
                    helm_revision: a.helm.revision,
                    helm_status: (&a.helm.status).into(),
                    objects: a.objects,
                    not_rendered: a
                        .left
                        .iter()
                        .map(|(api_version, key)| ObjectIdentity::new(api_version, key))
                        .collect(),
                })
                .collect(),
        }
    }
}
