//! `metadata.managedFields` bookkeeping: the apiserver's FieldManager on top
//! of structured-merge-diff's `merge.Updater` (Apply with pruning and
//! conflicts, Update with ownership transfer).

use crate::error::{ApiError, Cause};
use crate::fieldpath::{PathElement, Set, path_string};
use crate::schema::{Schema, TypeId};
use crate::smd;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub set: Set,
}

impl Entry {
    /// `BuildManagerIdentifier`: appliers are identified regardless of apiVersion.
    fn same_identity(&self, manager: &str, op: Operation, api_version: &str, subresource: &str) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api_version)
    }

    /// The encoded identity (JSON of the entry without time and fields), the
    /// key conflicts are grouped and sorted by.
    fn identity(&self) -> String {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), self.manager.clone().into());
        }
        m.insert("operation".into(), self.operation.as_str().into());
        if self.operation == Operation::Update {
            m.insert("apiVersion".into(), self.api_version.clone().into());
        }
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m).to_string()
    }

    /// `printManager`.
    fn printable(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

/// Paths never recorded as owned (`stripMetaManager`).
fn strip_set() -> Set {
    let mut s = Set::new();
    for p in [
        vec!["apiVersion"],
        vec!["kind"],
        vec!["metadata"],
        vec!["metadata", "name"],
        vec!["metadata", "namespace"],
        vec!["metadata", "creationTimestamp"],
        vec!["metadata", "selfLink"],
        vec!["metadata", "uid"],
        vec!["metadata", "clusterName"],
        vec!["metadata", "generation"],
        vec!["metadata", "managedFields"],
        vec!["metadata", "resourceVersion"],
    ] {
        let path: Vec<PathElement> = p.into_iter().map(|f| PathElement::Field(f.into())).collect();
        s.insert(&path);
    }
    s
}

impl Managed {
    /// Decodes `metadata.managedFields`; entries that don't parse are dropped
    /// like the apiserver's `DecodeManagedFields` error fallback.
    pub fn decode(v: Option<&Value>) -> Managed {
        let mut entries = Vec::new();
        for e in v.and_then(Value::as_array).into_iter().flatten() {
            let operation = match e["operation"].as_str() {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                _ => continue,
            };
            let Ok(set) = Set::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Object(Map::new()))) else {
                continue;
            };
            entries.push(Entry {
                manager: e["manager"].as_str().unwrap_or_default().into(),
                operation,
                api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                time: e["time"].as_str().map(String::from),
                subresource: e["subresource"].as_str().unwrap_or_default().into(),
                set,
            });
        }
        Managed { entries }
    }

    /// Encodes in the apiserver's order: operation, time, manager, apiVersion, subresource.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            a.operation
                .cmp(&b.operation)
                .then_with(|| a.time.clone().unwrap_or_default().cmp(&b.time.clone().unwrap_or_default()))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| a.api_version.cmp(&b.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        Some(Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut m = Map::new();
                    if !e.manager.is_empty() {
                        m.insert("manager".into(), e.manager.clone().into());
                    }
                    m.insert("operation".into(), e.operation.as_str().into());
                    m.insert("apiVersion".into(), e.api_version.clone().into());
                    if let Some(t) = &e.time {
                        m.insert("time".into(), t.clone().into());
                    }
                    m.insert("fieldsType".into(), "FieldsV1".into());
                    m.insert("fieldsV1".into(), e.set.to_fields_v1());
                    if !e.subresource.is_empty() {
                        m.insert("subresource".into(), e.subresource.clone().into());
                    }
                    Value::Object(m)
                })
                .collect(),
        ))
    }

    fn position(&self, manager: &str, op: Operation, api_version: &str, subresource: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.same_identity(manager, op, api_version, subresource))
    }

    fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.set.is_empty());
    }
}

/// Who writes, at which version, when.
pub struct Op<'a> {
    pub manager: &'a str,
    pub api_version: String,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: &'a str,
    pub now: &'a str,
}

/// Runs SMD operations for one object type. Objects passed in must not carry
/// `metadata.managedFields`.
pub struct FieldManager<'a> {
    pub schema: &'a Schema,
    pub ty: TypeId,
}

impl FieldManager<'_> {
    fn err(&self, e: String) -> ApiError {
        ApiError::internal(e)
    }

    /// `merge.Updater.update`: managers other than `skip` lose what changed;
    /// with `force == false` an overlap with modified/added paths is a conflict.
    fn transfer(
        &self,
        cmp: &smd::Comparison,
        managed: &mut Managed,
        skip: Option<usize>,
        force: bool,
    ) -> Result<(), ApiError> {
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts: Vec<(usize, Set)> = Vec::new();
        for (i, e) in managed.entries.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let c = e.set.intersection(&changed);
            if !c.is_empty() {
                conflicts.push((i, c));
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(conflict_error(managed, conflicts));
        }
        for (i, c) in conflicts {
            managed.entries[i].set = managed.entries[i].set.difference(&c);
        }
        for (i, e) in managed.entries.iter_mut().enumerate() {
            if Some(i) != skip {
                e.set = e.set.difference(&cmp.removed);
            }
        }
        Ok(())
    }

    /// Server-side apply of `config` onto `live` (the zero object on create).
    /// Returns the merged object; `managed` is updated in place.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        managed: &mut Managed,
        op: &Op,
        force: bool,
    ) -> Result<Value, ApiError> {
        let (manager, api_version, now) = (op.manager, op.api_version.as_str(), op.now);
        let s = self.schema;
        let merged = smd::merge(s, self.ty, live, config).map_err(|e| self.err(e))?;
        let new_set = smd::to_field_set(s, self.ty, config)
            .map_err(|e| ApiError::internal(format!("failed to create typed patch object: {e}")))?
            .difference(&strip_set());
        let idx = match managed.position(manager, Operation::Apply, api_version, op.subresource) {
            Some(i) => i,
            None => {
                managed.entries.push(Entry {
                    manager: manager.into(),
                    operation: Operation::Apply,
                    api_version: api_version.into(),
                    time: None,
                    subresource: op.subresource.into(),
                    set: Set::new(),
                });
                managed.entries.len() - 1
            }
        };
        let last = std::mem::replace(&mut managed.entries[idx].set, new_set);
        managed.entries[idx].api_version = api_version.into();
        let pruned = self.prune(&merged, managed, &last)?;
        let cmp = smd::compare(s, self.ty, live, &pruned).map_err(|e| self.err(e))?;
        self.transfer(&cmp, managed, Some(idx), force)?;
        if pruned != *live || managed.entries[idx].time.is_none() {
            managed.entries[idx].time = Some(now.into());
        }
        managed.drop_empty();
        Ok(pruned)
    }

    /// `Updater.prune`: removes what the applier owned last time and no longer
    /// applies, unless someone else (or the new config) owns it.
    fn prune(&self, merged: &Value, managed: &Managed, last: &Set) -> Result<Value, ApiError> {
        if last.is_empty() {
            return Ok(merged.clone());
        }
        let (s, ty) = (self.schema, self.ty);
        let named = |set: &Set| smd::ensure_named(s, ty, set);
        let field_set = |v: &Value| smd::to_field_set(s, ty, v).map(|set| named(&set)).map_err(|e| self.err(e));
        let last = named(last);
        let pruned = smd::remove_items(s, ty, merged, &last);
        let all = managed.entries.iter().fold(Set::new(), |acc, e| acc.union(&e.set));
        let merged_set = field_set(merged)?;
        let pruned_set = field_set(&pruned)?;
        let pruned = smd::remove_items(s, ty, merged, &merged_set.difference(&pruned_set.union(&named(&all))));
        let pruned_set = field_set(&pruned)?;
        Ok(smd::remove_items(s, ty, merged, &merged_set.difference(&pruned_set).intersection(&last)))
    }

    /// A non-apply write (`managedFieldsUpdater.Update`): the manager takes
    /// ownership of everything it added or changed; others lose it.
    pub fn update(&self, live: &Value, new: &Value, managed: &mut Managed, op: &Op) -> Result<(), ApiError> {
        let (manager, api_version, subresource, now) = (op.manager, op.api_version.as_str(), op.subresource, op.now);
        let cmp = smd::compare(self.schema, self.ty, live, new).map_err(|e| self.err(e))?;
        self.transfer(&cmp, managed, None, true)?;
        managed.drop_empty();
        let mine = cmp.modified.union(&cmp.added).difference(&strip_set());
        if mine.is_empty() {
            return Ok(());
        }
        let idx = managed.position(manager, Operation::Update, api_version, subresource);
        match idx {
            Some(i) => {
                let e = &mut managed.entries[i];
                e.set = e.set.union(&mine);
                e.time = Some(now.into());
            }
            None => managed.entries.push(Entry {
                manager: manager.into(),
                operation: Operation::Update,
                api_version: api_version.into(),
                time: Some(now.into()),
                subresource: subresource.into(),
                set: mine,
            }),
        }
        Ok(())
    }
}

/// `internal.NewConflictError`.
fn conflict_error(managed: &Managed, conflicts: Vec<(usize, Set)>) -> ApiError {
    let mut by_manager: Vec<(&Entry, Vec<String>)> = conflicts
        .iter()
        .map(|(i, set)| (&managed.entries[*i], set.paths().iter().map(|p| path_string(p)).collect()))
        .collect();
    by_manager.sort_by_key(|(e, _)| e.identity());
    let mut causes = Vec::new();
    for (e, paths) in &by_manager {
        for p in paths {
            causes.push(Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {}", e.printable()),
                field: p.clone(),
            });
        }
    }
    let message = if causes.len() == 1 {
        format!("Apply failed with 1 conflict: {}: {}", causes[0].message, causes[0].field)
    } else {
        let mut lines = Vec::new();
        for (e, paths) in &by_manager {
            lines.push(format!("conflicts with {}:", e.printable()));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!("Apply failed with {} conflicts: {}", causes.len(), lines.join("\n"))
    };
    ApiError::apply_conflict(message, causes)
}
