//! Kubernetes strategic merge patch, as `kubectl patch --type strategic` and
//! kustomize's strategic merge patches apply it.
//!
//! The two disagree in places, so the caller picks a [`Flavor`]. [`Flavor::Kubernetes`]
//! follows the Kubernetes implementation (`k8s.io/apimachinery/pkg/util/strategicpatch`), except:
//! - lists are matched by all of their list-map keys (see [`merge_keys`]);
//! - `$patch: delete` on a map removes the field, as kustomize does, instead of
//!   leaving `{}` behind;
//! - a list element with a merge key and `$patch: replace` replaces just that
//!   element (only `{$patch: replace}` on its own replaces the whole list);
//! - `null`s and directives are dropped from newly added fields too, so no
//!   directive key ever reaches the result.
//!
//! [`Flavor::Kustomize`] follows kustomize's kyaml (`kyaml/yaml/merge2` with
//! `ListIncreaseDirection: Prepend`), which `kubectl kustomize` applies patches with:
//! - a merged list holds the patch's elements first, in the patch's order, then the
//!   target's other elements in their order (lists keyed by several fields, such as ports,
//!   keep Kubernetes' order);
//! - `$patch: replace` on an element the target has leaves that element as it was;
//! - `$patch` is its only directive: `$retainKeys`, `$setElementOrder/...` and
//!   `$deleteFromPrimitiveList/...` are copied into the result as plain fields;
//! - in a list keyed by one field, an element without the key (an `env` entry without `name`)
//!   is merged as kyaml merges it (see `keyless_as_kyaml`), where Kubernetes refuses it.
//!
//! In both, `{$patch: replace}` in a list without merge key replaces the list, and other
//! directives there are an error (kustomize copies them into the object).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::merge_keys::{self, ListStrategy, MergeKey};
use super::{PatchError, display_pointer, push_token, type_name};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Whose strategic merge to follow where Kubernetes and kustomize differ (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `kubectl patch`, server-side patches, and the three-way diff.
    Kubernetes,
    /// The patches of a kustomization, as `kubectl kustomize` applies them.
    Kustomize,
}

/// Applies the strategic merge `patch` to `target`, an object of the given
/// `apiVersion` and `kind` (which select the list merge keys), as Kubernetes does.
///
/// # Errors
/// When the patch is malformed: a list element without its merge key, an
/// unknown or misused directive, or a patch that deletes the whole object.
/// `target` is then left unchanged.
pub fn merge(target: &mut Value, patch: &Value, api_version: &str, kind: &str) -> Result<(), PatchError> {
    merge_as(Flavor::Kubernetes, target, patch, api_version, kind)
}

/// [`merge`] in the given flavor.
///
/// # Errors
/// As [`merge`].
pub fn merge_as(
    flavor: Flavor,
    target: &mut Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
) -> Result<(), PatchError> {
    *target = merged_as(flavor, target.clone(), patch, api_version, kind)?;
    Ok(())
}

/// [`merge`], taking the target and returning it merged: for a caller with no use for the
/// target after a failure, which then need not be copied first.
///
/// # Errors
/// As [`merge`].
pub fn merged(target: Value, patch: &Value, api_version: &str, kind: &str) -> Result<Value, PatchError> {
    merged_as(Flavor::Kubernetes, target, patch, api_version, kind)
}

fn merged_as(
    flavor: Flavor,
    mut target: Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject { what: "patch", found: type_name(patch) });
    };
    let Value::Object(object) = &mut target else {
        return Err(PatchError::NotAnObject { what: "patched document", found: type_name(&target) });
    };
    let ctx = Ctx { api_version, kind, flavor };
    match ctx.merge_map(object, patch, &Loc::ROOT)? {
        Outcome::Keep if flavor == Flavor::Kustomize => {
            one_element_per_key(&mut target, &mut Vec::new(), api_version, kind);
            Ok(target)
        }
        Outcome::Keep => Ok(target),
        Outcome::Delete => Err(PatchError::DeletesObject),
    }
}

/// kyaml's strategic merge walks every field of the target, whether the patch names it or not
/// (maps, and the elements of lists merged by key, not atomic lists), and sets each list merged
/// by one key back by key: one element per key, where the first was, holding the last. A JSON
/// patch's `env/-` may have added a duplicate that a later strategic merge of the same object
/// thus removes, though the merge patch says nothing of `env`.
fn one_element_per_key(value: &mut Value, fields: &mut Vec<String>, api_version: &str, kind: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                fields.push(key.clone());
                one_element_per_key(child, fields, api_version, kind);
                fields.pop();
            }
        }
        Value::Array(items) => {
            let path: Vec<&str> = fields.iter().map(String::as_str).collect();
            let ListStrategy::Merge { keys } = merge_keys::list_strategy(api_version, kind, &path) else { return };
            // A list a merge built has its keyless elements as kyaml leaves them; only one
            // without a key at all (not `name: ""`) makes kyaml's walk change it again.
            if let [key] = keys
                && items.iter().any(|e| e.get(key.field).is_none_or(Value::is_null))
            {
                let list = std::mem::take(items);
                *items = keyless_as_kyaml(Some(list), None, key.field, &mut |_, element, _| Ok(element.clone()))
                    .expect("without a patch nothing is merged");
            } else if keys.len() == 1 {
                let listed =
                    std::mem::take(items).into_iter().map(|value| Item { id: identify(Some(keys), &value), value });
                *items = one_per_key(listed.collect()).into_iter().map(|item| item.value).collect();
            }
            for item in items.iter_mut() {
                one_element_per_key(item, fields, api_version, kind);
            }
        }
        _ => {}
    }
}

/// Merges a patch's list element (at its position in the patch) into the target's, if any.
type MergeElement<'m> = dyn FnMut(Option<&Value>, &Value, usize) -> Result<Value, PatchError> + 'm;

/// The text kyaml matches a list element's `key` by: empty when the element has none (or it
/// is null, or the element no map).
fn key_text(element: &Value, key: &str) -> String {
    match element.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Whether kyaml matches `element` by the empty text ([`key_text`] empty), told without making
/// the text: every keyed list a strategic merge meets is looked at so.
fn has_empty_key(element: &Value, key: &str) -> bool {
    match element.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    }
}

/// kyaml's merge of a list keyed by the one field `key` where an element has no key (an `env`
/// entry without `name`), as `kubectl kustomize` applies it (`walkAssociativeSequence`,
/// `ElementSetter`): each key value, the patch's first, is looked up in the target and the
/// patch and merged (`merge`: the target's element, if any, and the patch's); a value no list
/// holds as written, the empty one among them, takes out of the list being built every element
/// having that key (any key, for the empty one). The merged elements come first; the list's
/// own elements follow, each keyed one replacing its match, each keyless one replacing all that
/// came before. `target` is `None` when the object has no such list (the patch's list is then
/// the one built), `patch` when the patch does not name it.
fn keyless_as_kyaml(
    target: Option<Vec<Value>>,
    patch: Option<&[Value]>,
    key: &str,
    merge: &mut MergeElement,
) -> Result<Vec<Value>, PatchError> {
    let had_target = target.is_some();
    let mut lists: [Option<Vec<Value>>; 2] = [target, patch.map(<[Value]>::to_vec)];
    let built = usize::from(!had_target);
    let mut values: Vec<String> = Vec::new();
    for list in [&lists[1], &lists[0]].into_iter().flatten() {
        for element in list {
            let value = key_text(element, key);
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    let holding = |element: &Value, value: Option<&str>| match (element.get(key), value) {
        (Some(_), Some("")) => true,
        (Some(_), Some(value)) => key_text(element, key) == value,
        _ => false,
    };
    let mut items: Vec<Value> = Vec::new();
    for value in &values {
        let find = |list: &Option<Vec<Value>>| {
            list.iter()
                .flatten()
                .enumerate()
                .find(|(_, e)| e.is_object() && e.get(key).is_some() && key_text(e, key) == *value)
                .map(|(i, e)| (i, e.clone()))
        };
        let merged = match (find(&lists[0]), find(&lists[1])) {
            (None, None) => None,
            (Some((_, into)), None) => Some(into),
            (into, Some((at, element))) => Some(merge(into.as_ref().map(|(_, e)| e), &element, at)?),
        };
        match merged {
            Some(Value::Object(mut map)) if !map.is_empty() => {
                if !value.is_empty() && !map.contains_key(key) {
                    map.insert(key.to_string(), Value::String(value.clone()));
                }
                set_element(&mut items, Value::Object(map), key, Some(value));
            }
            _ => {
                if let Some(list) = lists[built].as_mut() {
                    list.retain(|e| !is_dropped(e) && !holding(e, Some(value)));
                }
            }
        }
    }
    for element in lists[built].take().unwrap_or_default() {
        let value = element.get(key).map(|_| key_text(&element, key));
        set_element(&mut items, element, key, value.as_deref());
    }
    Ok(items)
}

/// What kyaml's `ElementSetter` drops from a list it sets: null and empty elements.
fn is_dropped(element: &Value) -> bool {
    element.is_null() || element.as_object().is_some_and(Map::is_empty)
}

/// kyaml's `ElementSetter`: `element` in place of each element of `items` whose `key` is
/// `value` (any, for the empty value), or added at the end; with no value (an element without
/// the key), in place of every element.
fn set_element(items: &mut Vec<Value>, element: Value, key: &str, value: Option<&str>) {
    let mut found = false;
    let mut kept = Vec::with_capacity(items.len() + 1);
    for item in items.drain(..).filter(|item| !is_dropped(item)) {
        let matches = match value {
            None => false,
            Some("") => item.get(key).is_some(),
            Some(value) => item.get(key).is_some() && key_text(&item, key) == value,
        };
        if matches {
            found = true;
            kept.push(element.clone());
        } else if value.is_some() {
            kept.push(item);
        }
    }
    if !found {
        kept.push(element);
    }
    *items = kept;
}

/// One item per id, where the first was, holding the last; items without an id all stay.
fn one_per_key(items: Vec<Item>) -> Vec<Item> {
    let mut at: HashMap<Id, usize> = HashMap::new();
    let mut kept: Vec<Item> = Vec::with_capacity(items.len());
    for item in items {
        match item.id.as_ref().and_then(|_| at.get(&item.id)) {
            Some(&first) => kept[first].value = item.value,
            None => {
                at.insert(item.id.clone(), kept.len());
                kept.push(item);
            }
        }
    }
    kept
}

/// kyaml's strategic merge walks the whole target (maps, and the elements of lists merged by
/// key, not atomic lists) and clears every empty field it meets (`key:` in the file, which
/// reads as null, or `{key: }`, which reads as ""), keeping a `null` or `""` spelled out. `empty` are the pointers of the target's empty
/// fields; those the walk reaches are removed from `target`, and the others returned.
#[must_use]
pub fn clear_empty_values(target: &mut Value, empty: Vec<String>, api_version: &str, kind: &str) -> Vec<String> {
    empty
        .into_iter()
        .filter(|pointer| {
            let tokens: Vec<String> =
                pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
            let Some((last, parents)) = tokens.split_last() else { return false };
            let mut fields: Vec<&str> = Vec::new();
            let mut at = &mut *target;
            for token in parents {
                at = match at {
                    Value::Object(map) => {
                        fields.push(token);
                        match map.get_mut(token.as_str()) {
                            Some(next) => next,
                            None => return false,
                        }
                    }
                    Value::Array(items) => {
                        if !matches!(merge_keys::list_strategy(api_version, kind, &fields), ListStrategy::Merge { .. })
                        {
                            // Not walked: it stays empty for a later merge to clear.
                            return true;
                        }
                        match token.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                            Some(next) => next,
                            None => return false,
                        }
                    }
                    _ => return false,
                };
            }
            // Null, or the empty string an empty value of a flow mapping reads as.
            if let Value::Object(map) = at
                && map.get(last.as_str()).is_some_and(|v| v.is_null() || v.as_str() == Some(""))
            {
                map.shift_remove(last.as_str());
            }
            false
        })
        .collect()
}

/// Where the merge is: a step from the parent location. The schema path (list indices left
/// out) that selects the list strategy and the JSON pointer into the patch that errors name
/// are written out only when needed, not for every field merged.
#[derive(Clone, Copy)]
struct Loc<'l, 'p> {
    parent: Option<&'l Loc<'l, 'p>>,
    step: Step<'p>,
}

#[derive(Clone, Copy)]
enum Step<'p> {
    Root,
    Field(&'p str),
    Index(usize),
}

impl<'l, 'p> Loc<'l, 'p> {
    const ROOT: Loc<'static, 'static> = Loc { parent: None, step: Step::Root };

    fn field(&'l self, name: &'p str) -> Self {
        Loc { parent: Some(self), step: Step::Field(name) }
    }

    fn index(&'l self, index: usize) -> Self {
        Loc { parent: Some(self), step: Step::Index(index) }
    }

    /// The steps from the root to here.
    fn steps(&self) -> Vec<Step<'p>> {
        let mut steps = vec![self.step];
        let mut at = self.parent;
        while let Some(loc) = at {
            steps.push(loc.step);
            at = loc.parent;
        }
        steps.reverse();
        steps
    }

    fn fields(&self) -> Vec<&'p str> {
        self.steps()
            .into_iter()
            .filter_map(|step| if let Step::Field(name) = step { Some(name) } else { None })
            .collect()
    }

    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for step in self.steps() {
            match step {
                Step::Root => {}
                Step::Field(name) => push_token(&mut pointer, name),
                Step::Index(index) => push_token(&mut pointer, &index.to_string()),
            }
        }
        pointer
    }

    fn path(&self) -> String {
        display_pointer(&self.pointer())
    }

    /// The field this location is in, for messages.
    fn name(&self) -> String {
        self.fields().last().copied().unwrap_or_default().to_owned()
    }
}

enum Outcome {
    Keep,
    /// The patched map carried `$patch: delete`.
    Delete,
}

/// What a list element is matched by: its merge key values, or for lists of
/// scalars the scalar itself. `None` for elements that lack their key.
type Id = Option<Vec<Value>>;

struct Item {
    id: Id,
    value: Value,
}

fn identify(keys: Option<&[MergeKey]>, value: &Value) -> Id {
    match keys {
        Some(keys) => merge_keys::element_key(keys, value).ok(),
        None => Some(vec![value.clone()]),
    }
}

/// `{$patch: replace}` as a list element: the other elements replace the list.
fn is_list_replace(element: &Value) -> bool {
    element.as_object().is_some_and(|m| m.len() == 1 && m.get(PATCH).is_some_and(|d| d == "replace"))
}

/// `value` as an object, replacing it with `{}` if it is anything else.
fn make_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the value was just made an object"),
    }
}

struct Ctx<'a> {
    api_version: &'a str,
    kind: &'a str,
    flavor: Flavor,
}

impl Ctx<'_> {
    fn is_directive(&self, key: &str) -> bool {
        key == PATCH
            || self.flavor == Flavor::Kubernetes
                && (key == RETAIN_KEYS
                    || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                    || key.starts_with(SET_ELEMENT_ORDER))
    }

    fn strategy(&self, loc: &Loc) -> ListStrategy {
        merge_keys::list_strategy(self.api_version, self.kind, &loc.fields())
    }

    fn merge_map<'p>(
        &self,
        target: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        loc: &Loc<'_, 'p>,
    ) -> Result<Outcome, PatchError> {
        match patch.get(PATCH).map(Value::as_str) {
            None | Some(Some("merge")) => {}
            Some(Some("delete")) => return Ok(Outcome::Delete),
            Some(Some("replace")) => target.clear(),
            Some(_) => {
                return Err(PatchError::UnknownDirective { path: loc.field(PATCH).path() });
            }
        }

        if let Some(retain) = patch.get(RETAIN_KEYS).filter(|_| self.is_directive(RETAIN_KEYS)) {
            let Some(retain) = retain.as_array().filter(|keys| keys.iter().all(Value::is_string)) else {
                return Err(PatchError::MalformedDirective {
                    path: loc.path(),
                    directive: RETAIN_KEYS.to_owned(),
                    expected: "a list of field names",
                });
            };
            let retained = |key: &str| retain.iter().any(|r| r == key);
            // A patch that sets a field it does not retain contradicts itself.
            if let Some(key) =
                patch.iter().find_map(|(k, v)| (!self.is_directive(k) && !v.is_null() && !retained(k)).then_some(k))
            {
                return Err(PatchError::NotRetained { path: loc.field(key).path(), key: key.clone() });
            }
            target.retain(|key, _| retained(key));
        }

        // Deletions go first, so a patch that also lists the field adds after removing.
        for (key, remove) in patch {
            let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST).filter(|_| self.is_directive(key)) else {
                continue;
            };
            let Some(remove) = remove.as_array() else {
                return Err(PatchError::MalformedDirective {
                    path: loc.path(),
                    directive: key.clone(),
                    expected: "a list",
                });
            };
            if let Some(Value::Array(list)) = target.get_mut(field) {
                list.retain(|value| !remove.contains(value));
            }
        }

        for (key, value) in patch {
            if self.is_directive(key) {
                continue;
            }
            let field_loc = loc.field(key);
            match value {
                Value::Null => {
                    target.shift_remove(key);
                }
                Value::Object(nested) => {
                    let slot = make_object(target.entry(key).or_insert(Value::Null));
                    if let Outcome::Delete = self.merge_map(slot, nested, &field_loc)? {
                        target.shift_remove(key);
                    }
                }
                Value::Array(patch_list) => {
                    let current = match target.get_mut(key) {
                        Some(Value::Array(list)) => Some(std::mem::take(list)),
                        _ => None,
                    };
                    let order_key = format!("{SET_ELEMENT_ORDER}{key}");
                    let order = patch
                        .get(&order_key)
                        .filter(|_| self.is_directive(&order_key))
                        .map(|order| (order_key.as_str(), order));
                    let merged = self.merge_list(current, patch_list, order, loc, &field_loc)?;
                    target.insert(key.clone(), Value::Array(merged));
                }
                scalar => {
                    target.insert(key.clone(), scalar.clone());
                }
            }
        }

        // `$setElementOrder` for lists the patch does not otherwise change.
        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER).filter(|_| self.is_directive(key)) else {
                continue;
            };
            if patch.get(field).is_some_and(Value::is_array) {
                continue;
            }
            let field_loc = loc.field(field);
            let keys = match self.strategy(&field_loc) {
                ListStrategy::Atomic => continue,
                ListStrategy::MergePrimitives => None,
                ListStrategy::Merge { keys } => Some(keys),
            };
            if let Some(Value::Array(list)) = target.get_mut(field) {
                let original: Vec<Id> = list.iter().map(|v| identify(keys, v)).collect();
                let current = std::mem::take(list);
                *list = apply_order(current, &original, &[], (key, order), keys, loc, &field_loc)?;
            }
        }
        Ok(Outcome::Keep)
    }

    /// Merges `patch` into the list `target` at `loc`; `order` is the
    /// `$setElementOrder` directive for it, with its key, if the patch has one.
    fn merge_list<'p>(
        &self,
        target: Option<Vec<Value>>,
        patch: &'p [Value],
        order: Option<(&str, &Value)>,
        parent: &Loc<'_, 'p>,
        loc: &Loc<'_, 'p>,
    ) -> Result<Vec<Value>, PatchError> {
        let replace = patch.iter().any(is_list_replace);
        let elements: Vec<(usize, &Value)> = patch.iter().enumerate().filter(|(_, e)| !is_list_replace(e)).collect();
        let keys = match self.strategy(loc) {
            ListStrategy::Atomic => {
                return elements
                    .into_iter()
                    .map(|(i, element)| {
                        self.reject_directives(element, &loc.index(i).pointer(), &loc.name())?;
                        Ok(element.clone())
                    })
                    .collect();
            }
            ListStrategy::MergePrimitives => None,
            ListStrategy::Merge { keys } => Some(keys),
        };
        if let Some([key]) = keys
            && self.flavor == Flavor::Kustomize
            && order.is_none()
            && !patch.iter().any(|e| e.get(PATCH).is_some())
            && target.iter().flatten().chain(patch).any(|e| has_empty_key(e, key.field))
        {
            let mut merge = |into: Option<&Value>, element: &Value, at: usize| -> Result<Value, PatchError> {
                let mut merged = into.cloned().unwrap_or_else(|| Value::Object(Map::new()));
                if let Value::Object(element) = element {
                    self.merge_map(make_object(&mut merged), element, &loc.index(at))?;
                }
                Ok(merged)
            };
            return keyless_as_kyaml(target, Some(patch), key.field, &mut merge);
        }
        let target = target.unwrap_or_default();
        let original: Vec<Id> = target.iter().map(|v| identify(keys, v)).collect();
        let target = if replace { Vec::new() } else { target };
        let (merged, patched) = match keys {
            Some(keys) => self.merge_keyed(target, &elements, keys, loc)?,
            None => self.merge_primitives(target, &elements),
        };
        match order {
            Some(order) => apply_order(merged, &original, &patched, order, keys, parent, loc),
            None => Ok(merged),
        }
    }

    /// Merges a list whose elements are matched by `keys`. Also returns the ids of
    /// the plain (directive-free) patch elements, in patch order.
    fn merge_keyed<'p>(
        &self,
        mut target: Vec<Value>,
        elements: &[(usize, &'p Value)],
        keys: &'static [MergeKey],
        loc: &Loc<'_, 'p>,
    ) -> Result<(Vec<Value>, Vec<Id>), PatchError> {
        let mut merges = Vec::new();
        let written_in_target: Vec<bool> =
            keys.iter().map(|k| target.iter().any(|t| t.get(k.field).is_some_and(|v| !v.is_null()))).collect();
        let written = |key: &MergeKey| {
            let at = keys.iter().position(|k| k.field == key.field).unwrap_or_default();
            written_in_target[at] || elements.iter().any(|(_, e)| e.get(key.field).is_some_and(|v| !v.is_null()))
        };
        for &(i, element) in elements {
            let Value::Object(map) = element else {
                return Err(PatchError::ElementNotAnObject {
                    path: loc.index(i).path(),
                    field: loc.name(),
                    keys: merge_keys::describe_keys(keys),
                });
            };
            let id = merge_keys::element_key(keys, element).map_err(|missing| PatchError::MissingMergeKey {
                path: loc.index(i).path(),
                field: loc.name(),
                missing,
                keys: merge_keys::describe_keys(keys),
            })?;
            // Deletions apply before merges, so a patch can delete an element and add it back fresh.
            if map.get(PATCH).is_some_and(|d| d == "delete") {
                let deleted = |t: &Value| match self.flavor {
                    // kyaml matches several keys as written, on the keys some element writes:
                    // `{containerPort: 9443, $patch: delete}` leaves the port written with
                    // `protocol: TCP`, and a port without one when another port has one.
                    Flavor::Kustomize if keys.len() > 1 => keys.iter().filter(|k| written(k)).all(
                        |k| matches!((t.get(k.field), map.get(k.field)), (Some(a), Some(b)) if a == b && !a.is_null()),
                    ),
                    _ => merge_keys::element_key(keys, t).as_ref() == Ok(&id),
                };
                target.retain(|t| !deleted(t));
            } else {
                merges.push((i, Some(id), map));
            }
        }

        let server_order: Vec<Id> = target.iter().map(|v| identify(Some(keys), v)).collect();
        let mut items: Vec<Item> =
            target.into_iter().zip(server_order.iter().cloned()).map(|(value, id)| Item { id, value }).collect();
        // Like Kubernetes, merge into the first match should the target repeat a key.
        let mut first_at: HashMap<Id, usize> = HashMap::new();
        for (at, item) in items.iter().enumerate() {
            first_at.entry(item.id.clone()).or_insert(at);
        }
        for (i, id, patch) in &merges {
            let existing = first_at.get(id).copied();
            // kyaml merges such an element into a copy and then puts the target's back.
            if existing.is_some()
                && self.flavor == Flavor::Kustomize
                && patch.get(PATCH).is_some_and(|d| d == "replace")
            {
                continue;
            }
            let at = existing.unwrap_or_else(|| {
                items.push(Item { id: id.clone(), value: Value::Object(Map::new()) });
                first_at.insert(id.clone(), items.len() - 1);
                items.len() - 1
            });
            // `$patch: delete` elements were taken out above, so this never deletes.
            self.merge_map(make_object(&mut items[at].value), patch, &loc.index(*i))?;
        }

        if self.flavor == Flavor::Kustomize && keys.len() == 1 {
            // kyaml sets the target's elements back by key (see [`one_element_per_key`]); here,
            // before the patch's elements are put first.
            items = one_per_key(items);
        }
        let patch_order: Vec<Id> = merges.iter().map(|(_, id, _)| id.clone()).collect();
        let plain = merges.iter().filter(|(_, _, m)| !m.contains_key(PATCH)).map(|(_, id, _)| id.clone()).collect();
        // kyaml unifies the values of several keys (a port with and without `protocol`) and
        // sets the target's elements back in its order: there, the order is Kubernetes'.
        let merged = if keys.len() > 1 {
            arrange(items, &patch_order, &server_order)
        } else {
            self.arrange(items, &patch_order, &server_order)
        };
        Ok((merged, plain))
    }

    /// Set union of a list of scalars, e.g. finalizers.
    fn merge_primitives(&self, target: Vec<Value>, elements: &[(usize, &Value)]) -> (Vec<Value>, Vec<Id>) {
        let server_order: Vec<Id> = target.iter().map(|v| identify(None, v)).collect();
        let patch_order: Vec<Id> = elements.iter().map(|(_, v)| identify(None, v)).collect();
        let mut items: Vec<Item> = Vec::new();
        let mut seen = HashSet::new();
        for value in target.into_iter().chain(elements.iter().map(|(_, v)| (*v).clone())) {
            if seen.insert(value.clone()) {
                items.push(Item { id: identify(None, &value), value });
            }
        }
        (self.arrange(items, &patch_order, &server_order), patch_order)
    }

    /// Orders a merged list: Kubernetes interleaves (see [`arrange`]); kyaml puts the
    /// elements named in `patch_order` first, in that order, then the others as they were.
    fn arrange(&self, mut items: Vec<Item>, patch_order: &[Id], server_order: &[Id]) -> Vec<Value> {
        match self.flavor {
            Flavor::Kubernetes => arrange(items, patch_order, server_order),
            Flavor::Kustomize => {
                let patch_order = positions(patch_order);
                // A stable sort: the target's elements come before new ones in `items`.
                items.sort_by_cached_key(|item| {
                    item.id.as_ref().and_then(|id| patch_order.get(id).copied()).unwrap_or(usize::MAX)
                });
                items.into_iter().map(|item| item.value).collect()
            }
        }
    }

    /// Atomic lists are copied as they are, so a directive in them would leak into
    /// the result; it is almost certainly a patch written for a merge list.
    fn reject_directives(&self, value: &Value, pointer: &str, field: &str) -> Result<(), PatchError> {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let mut pointer = pointer.to_owned();
                    push_token(&mut pointer, key);
                    if self.is_directive(key) {
                        return Err(PatchError::DirectiveInAtomicList {
                            path: pointer,
                            field: field.to_owned(),
                            directive: key.clone(),
                        });
                    }
                    self.reject_directives(value, &pointer, field)?;
                }
            }
            Value::Array(list) => {
                for (i, value) in list.iter().enumerate() {
                    let mut pointer = pointer.to_owned();
                    push_token(&mut pointer, &i.to_string());
                    self.reject_directives(value, &pointer, field)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Orders a merged list like Kubernetes does: elements named in `patch_order`
/// keep the patch's relative order, the others keep the target's, and the two
/// runs are interleaved by their positions in the target (`server_order`).
fn arrange(items: Vec<Item>, patch_order: &[Id], server_order: &[Id]) -> Vec<Value> {
    let (patch_order, server_order) = (positions(patch_order), positions(server_order));
    let position = |order: &HashMap<&Vec<Value>, usize>, id: &Id| id.as_ref().and_then(|id| order.get(id).copied());
    let (mut from_patch, mut server_only): (Vec<Item>, Vec<Item>) =
        items.into_iter().partition(|item| position(&patch_order, &item.id).is_some());
    from_patch.sort_by_cached_key(|item| position(&patch_order, &item.id));
    server_only.sort_by_cached_key(|item| position(&server_order, &item.id).unwrap_or(usize::MAX));

    // A server-only element goes first only if it preceded the patch element in the target.
    let mut result = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut server_only = server_only.into_iter().peekable();
    for item in from_patch {
        let patch_at = position(&server_order, &item.id);
        while let Some(next) = server_only.peek() {
            match (position(&server_order, &next.id), patch_at) {
                (Some(s), Some(p)) if s < p => result.extend(server_only.next().map(|i| i.value)),
                _ => break,
            }
        }
        result.push(item.value);
    }
    result.extend(server_only.map(|item| item.value));
    result
}

/// Each id's first position in `order`.
fn positions(order: &[Id]) -> HashMap<&Vec<Value>, usize> {
    let mut first = HashMap::new();
    for (at, id) in order.iter().enumerate() {
        if let Some(id) = id {
            first.entry(id).or_insert(at);
        }
    }
    first
}

/// Applies `$setElementOrder/<field>`: the listed elements take its order, the
/// rest keep the target's. `patched` are the ids of the patch's plain elements,
/// which the directive must list in the same order.
fn apply_order(
    merged: Vec<Value>,
    original: &[Id],
    patched: &[Id],
    (directive, order): (&str, &Value),
    keys: Option<&'static [MergeKey]>,
    parent: &Loc,
    loc: &Loc,
) -> Result<Vec<Value>, PatchError> {
    let Some(order) = order.as_array() else {
        return Err(PatchError::MalformedDirective {
            path: parent.path(),
            directive: directive.to_owned(),
            expected: "a list",
        });
    };
    let mut order_ids = Vec::with_capacity(order.len());
    for (j, element) in order.iter().enumerate() {
        let id = match keys {
            None => identify(None, element),
            Some(keys) => {
                let mut path = parent.pointer();
                push_token(&mut path, directive);
                push_token(&mut path, &j.to_string());
                let path = display_pointer(&path);
                if !element.is_object() {
                    let keys = merge_keys::describe_keys(keys);
                    return Err(PatchError::ElementNotAnObject { path, field: loc.name(), keys });
                }
                let id = merge_keys::element_key(keys, element).map_err(|missing| {
                    let keys = merge_keys::describe_keys(keys);
                    PatchError::MissingMergeKey { path, field: loc.name(), missing, keys }
                })?;
                Some(id)
            }
        };
        order_ids.push(id);
    }

    let mut next = 0;
    for id in &order_ids {
        if patched.get(next) == Some(id) {
            next += 1;
        }
    }
    if next < patched.len() {
        return Err(PatchError::ElementOrderMismatch { path: parent.path(), field: loc.name() });
    }

    let items = merged.into_iter().map(|value| Item { id: identify(keys, &value), value }).collect();
    Ok(arrange(items, &order_ids, original))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": containers}}}
        })
    }

    fn patched(mut target: Value, patch: Value) -> Value {
        let api_version = target["apiVersion"].as_str().unwrap().to_owned();
        let kind = target["kind"].as_str().unwrap().to_owned();
        merge(&mut target, &patch, &api_version, &kind).unwrap();
        target
    }

    fn containers(patch: Value) -> Value {
        let base = deployment(json!([
            {"name": "app", "image": "app:1", "args": ["--a", "--b"],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]},
            {"name": "sidecar", "image": "side:1"}
        ]));
        let out = patched(base, deployment(patch));
        out["spec"]["template"]["spec"]["containers"].clone()
    }

    fn error(target: Value, patch: Value) -> String {
        let mut out = target.clone();
        let api_version = target["apiVersion"].as_str().unwrap_or("v1").to_owned();
        let kind = target["kind"].as_str().unwrap_or("ConfigMap").to_owned();
        let err = merge(&mut out, &patch, &api_version, &kind).unwrap_err().to_string();
        assert_eq!(out, target, "a failed patch must leave the document alone");
        err
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn maps_merge_recursively_and_null_deletes() {
        let out = patched(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": null, "c": "3", "absent": null}, "annotations": {"x": "y"}}}),
        );
        assert_eq!(out["metadata"], json!({"name": "c", "labels": {"b": "2", "c": "3"}, "annotations": {"x": "y"}}));
    }

    #[test]
    fn container_merges_by_name_leaving_the_other_alone() {
        let out = containers(json!([{"name": "sidecar", "image": "side:2"}]));
        assert_eq!(out[1], json!({"name": "sidecar", "image": "side:2"}));
        assert_eq!(out[0]["image"], "app:1");
    }

    #[test]
    fn env_merges_by_name() {
        let out =
            containers(json!([{"name": "app", "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"}]}]));
        assert_eq!(
            out[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "22"}, {"name": "C", "value": "3"}])
        );
    }

    #[test]
    fn adding_a_container_keeps_nulls_and_directives_out() {
        let out = containers(json!([{"name": "app", "image": "app:2"}, {"name": "new", "image": "n", "command": null,
                                      "resources": {"$patch": "replace", "limits": {"cpu": "1"}}}]));
        assert_eq!(names(&out), ["app", "new", "sidecar"]);
        assert_eq!(out[1], json!({"name": "new", "image": "n", "resources": {"limits": {"cpu": "1"}}}));
    }

    #[test]
    fn new_elements_are_placed_like_kubernetes_places_them() {
        // Expected orders recorded from `kubectl patch --local` (apimachinery).
        let base = || deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let order = |patch: Value| {
            let out = patched(base(), deployment(patch));
            names(&out["spec"]["template"]["spec"]["containers"]).join(",")
        };
        assert_eq!(order(json!([{"name": "d"}])), "d,a,b,c");
        assert_eq!(order(json!([{"name": "b", "image": "x"}, {"name": "d"}])), "a,b,d,c");
        assert_eq!(order(json!([{"name": "c", "image": "x"}, {"name": "a", "image": "x"}])), "b,c,a");
        assert_eq!(order(json!([{"name": "c"}, {"name": "d"}, {"name": "a"}])), "b,c,d,a");
        assert_eq!(order(json!([{"name": "b"}, {"name": "e"}, {"name": "d"}])), "a,b,e,d,c");
    }

    #[test]
    fn kustomize_puts_the_patch_elements_first() {
        // Expected orders recorded from `kubectl kustomize` (kustomize v5.5).
        let order = |patch: Value| {
            let mut out = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
            merge_as(Flavor::Kustomize, &mut out, &deployment(patch), "apps/v1", "Deployment").unwrap();
            names(&out["spec"]["template"]["spec"]["containers"]).join(",")
        };
        assert_eq!(order(json!([{"name": "d"}])), "d,a,b,c");
        assert_eq!(order(json!([{"name": "b", "image": "x"}, {"name": "d"}])), "b,d,a,c");
        assert_eq!(order(json!([{"name": "c"}, {"name": "d"}, {"name": "a"}])), "c,d,a,b");
        assert_eq!(order(json!([{"name": "e"}, {"name": "b", "$patch": "delete"}])), "e,a,c");

        let mut out = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": ["x", "w"]}});
        let patch = json!({"metadata": {"finalizers": ["z", "w"]}});
        merge_as(Flavor::Kustomize, &mut out, &patch, "v1", "ConfigMap").unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["z", "w", "x"]));
    }

    #[test]
    fn an_empty_key_is_told_as_its_text_would_tell_it() {
        for element in [
            json!({}),
            json!({"name": null}),
            json!({"name": ""}),
            json!({"name": "a"}),
            json!({"name": 0}),
            json!({"name": false}),
            json!({"name": []}),
            json!({"name": {}}),
            json!("a"),
            json!(null),
        ] {
            assert_eq!(has_empty_key(&element, "name"), key_text(&element, "name").is_empty(), "{element}");
        }
    }

    /// Elements without their merge key, as kyaml merges them: results recorded from `kubectl
    /// kustomize` (kustomize v5.5), where weaver refused every one ("has no `name`").
    #[test]
    fn kustomize_merges_elements_without_their_key_as_kyaml_does() {
        let env = |target: Option<Value>, patch: Value| {
            let mut container = json!({"name": "c", "image": "i"});
            if let Some(target) = target {
                container["env"] = target;
            }
            let mut out = deployment(json!([container]));
            let patch = deployment(json!([{"name": "c", "env": patch}]));
            merge_as(Flavor::Kustomize, &mut out, &patch, "apps/v1", "Deployment").unwrap();
            out["spec"]["template"]["spec"]["containers"][0]["env"].clone()
        };
        let a = json!({"name": "A", "value": "a"});
        assert_eq!(env(Some(json!([a])), json!([{"value": "b"}])), json!([]));
        assert_eq!(
            env(Some(json!([a])), json!([{"name": "B", "value": "b"}, {"value": "x"}])),
            json!([{"name": "B", "value": "b"}])
        );
        assert_eq!(
            env(Some(json!([a, {"name": "C"}])), json!([{"name": "A", "value": "z"}, {"value": "x"}])),
            json!([{"name": "A", "value": "z"}])
        );
        assert_eq!(env(None, json!([{"value": "x"}, {"name": "B"}])), json!([{"value": "x"}]));
        assert_eq!(env(Some(json!([a, {"value": "q"}])), json!([{"name": "B"}])), json!([{"value": "q"}]));
        assert_eq!(
            env(Some(json!([a])), json!([{"name": "", "value": "x"}])),
            json!([{"name": "", "value": "x"}, {"name": "A", "value": "a"}])
        );
        // A list the patch does not name is walked too.
        let mut out = deployment(json!([{"name": "c", "env": [{"value": "q1"}, {"value": "q2"}, a]}]));
        merge_as(
            Flavor::Kustomize,
            &mut out,
            &deployment(json!([{"name": "c", "image": "j"}])),
            "apps/v1",
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["env"], json!([{"value": "q2"}]));
    }

    #[test]
    fn kustomize_keeps_an_element_patched_with_replace_and_copies_other_directives() {
        let mut out = deployment(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let mut patch = deployment(json!([{"name": "b", "image": "z", "$patch": "replace"},
                                          {"name": "n", "image": "n", "$patch": "replace"}]));
        patch["spec"]["$retainKeys"] = json!(["template"]);
        merge_as(Flavor::Kustomize, &mut out, &patch, "apps/v1", "Deployment").unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b"}, {"name": "n", "image": "n"}, {"name": "a", "image": "a"}])
        );
        assert_eq!(out["spec"]["$retainKeys"], json!(["template"]));
    }

    #[test]
    fn kustomize_deletes_by_the_keys_elements_write() {
        let delete = |ports: Value| {
            let mut out = deployment(json!([{"name": "app", "ports": ports}]));
            let patch = deployment(json!([{"name": "app", "ports": [{"containerPort": 80, "$patch": "delete"}]}]));
            merge_as(Flavor::Kustomize, &mut out, &patch, "apps/v1", "Deployment").unwrap();
            out["spec"]["template"]["spec"]["containers"][0]["ports"].clone()
        };
        // No element writes a protocol: containerPort alone matches.
        assert_eq!(delete(json!([{"containerPort": 80}, {"containerPort": 81}])), json!([{"containerPort": 81}]));
        // One does: the patch's port, written without one, matches neither.
        let kept = json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 81}]);
        assert_eq!(delete(kept.clone()), kept);
        // Kubernetes defaults the protocol: the TCP port is the one deleted.
        let mut out = deployment(json!([{"name": "app", "ports": kept}]));
        let patch = deployment(json!([{"name": "app", "ports": [{"containerPort": 80, "$patch": "delete"}]}]));
        merge(&mut out, &patch, "apps/v1", "Deployment").unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["ports"], json!([{"containerPort": 81}]));
    }

    #[test]
    fn patch_delete_removes_the_element() {
        let out = containers(json!([{"name": "sidecar", "$patch": "delete"}, {"name": "gone", "$patch": "delete"}]));
        assert_eq!(names(&out), ["app"]);
    }

    #[test]
    fn delete_then_add_back_in_one_patch() {
        let out = containers(json!([{"name": "app", "$patch": "delete"}, {"name": "app", "image": "fresh"}]));
        assert_eq!(out[0], json!({"name": "app", "image": "fresh"}));
    }

    #[test]
    fn patch_replace_on_a_list_replaces_it() {
        let out = containers(json!([{"$patch": "replace"}, {"name": "only", "image": "o"}]));
        assert_eq!(out, json!([{"name": "only", "image": "o"}]));
    }

    #[test]
    fn patch_replace_on_an_element_replaces_only_that_element() {
        let out = containers(json!([{"name": "app", "image": "app:9", "$patch": "replace"}]));
        assert_eq!(out[0], json!({"name": "app", "image": "app:9"}));
        assert_eq!(out[1]["name"], "sidecar");
    }

    #[test]
    fn patch_replace_and_delete_on_maps() {
        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}},
                          "data": {"k": "v", "q": "w"}});
        let out = patched(
            base.clone(),
            json!({"data": {"$patch": "replace", "new": "n"}, "metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(out["data"], json!({"new": "n"}));
        assert_eq!(out["metadata"], json!({"name": "c"}));
        let out = patched(base, json!({"metadata": {"annotations": {"$patch": "delete"}}}));
        assert!(out["metadata"].get("annotations").is_none());
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let out = containers(json!([{"name": "app", "args": ["--c"]}]));
        assert_eq!(out[0]["args"], json!(["--c"]));
        let custom =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"items": [{"name": "a", "x": 1}]}});
        let out = patched(custom, json!({"spec": {"items": [{"name": "a", "y": 2}]}}));
        assert_eq!(out["spec"]["items"], json!([{"name": "a", "y": 2}]));
    }

    #[test]
    fn ports_merge_by_container_port_and_protocol() {
        let out = containers(json!([{"name": "app", "ports": [
            {"containerPort": 80, "protocol": "UDP", "name": "dns"},
            {"containerPort": 80, "name": "http"},
            {"containerPort": 443}
        ]}]));
        // Patched elements take the patch's order.
        assert_eq!(
            out[0]["ports"],
            json!([{"containerPort": 80, "protocol": "UDP", "name": "dns"}, {"containerPort": 80, "name": "http"},
                   {"containerPort": 443}])
        );
        let out = containers(
            json!([{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP", "$patch": "delete"}]}]),
        );
        assert_eq!(out[0]["ports"], json!([{"containerPort": 80, "protocol": "UDP"}]));
    }

    #[test]
    fn volumes_merge_by_name() {
        let base = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"volumes": [
            {"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c"}}]}});
        let out = patched(
            base,
            json!({"spec": {"volumes": [{"name": "conf", "configMap": {"name": "c2"}},
                                                             {"name": "tmp", "emptyDir": {}}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c2"}},
                   {"name": "tmp", "emptyDir": {}}])
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let base = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [
            {"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}});
        let out = patched(base, json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}));
        assert_eq!(out["spec"]["ports"], json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 9443}]));
    }

    #[test]
    fn finalizers_are_a_set() {
        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": ["x", "w"]}});
        let out = patched(base.clone(), json!({"metadata": {"finalizers": ["z", "x"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["z", "x", "w"]));
        let out =
            patched(base, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"], "finalizers": ["q"]}}));
        assert_eq!(out["metadata"], json!({"finalizers": ["q", "w"]}));
    }

    #[test]
    fn retain_keys_clears_unlisted_fields() {
        let base = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"strategy": {
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = patched(base.clone(), json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            error(base, json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}})),
            "the patch sets /spec/strategy/rollingUpdate, but `$retainKeys` next to it does not list `rollingUpdate`"
        );
    }

    #[test]
    fn set_element_order_orders_the_result() {
        let out = containers(json!([]));
        assert_eq!(names(&out), ["app", "sidecar"]);
        let base = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let mut patch = deployment(json!([{"name": "d"}]));
        patch["spec"]["template"]["spec"]["$setElementOrder/containers"] =
            json!([{"name": "c"}, {"name": "d"}, {"name": "a"}, {"name": "b"}]);
        let out = patched(base.clone(), patch);
        assert_eq!(names(&out["spec"]["template"]["spec"]["containers"]), ["c", "d", "a", "b"]);
        assert!(out["spec"]["template"]["spec"].get("$setElementOrder/containers").is_none());

        // Order alone, without touching the list.
        let patch =
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}});
        let out = patched(base.clone(), patch);
        assert_eq!(names(&out["spec"]["template"]["spec"]["containers"]), ["b", "a", "c"]);

        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": ["x", "w"]}});
        let out =
            patched(base, json!({"metadata": {"$setElementOrder/finalizers": ["w", "z", "x"], "finalizers": ["z"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["w", "z", "x"]));
    }

    #[test]
    fn set_element_order_must_agree_with_the_patch() {
        let mut patch = deployment(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]));
        patch["spec"]["template"]["spec"]["$setElementOrder/containers"] = json!([{"name": "b"}, {"name": "a"}]);
        assert_eq!(
            error(deployment(json!([{"name": "a"}])), patch),
            "`$setElementOrder/containers` at /spec/template/spec does not list every patched element of containers, in patch order"
        );
    }

    #[test]
    fn missing_merge_key_names_the_path() {
        assert_eq!(
            error(deployment(json!([{"name": "a"}])), deployment(json!([{"image": "x"}]))),
            "list element at /spec/template/spec/containers/0 has no `name`; elements of containers are matched by name"
        );
        assert_eq!(
            error(
                json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": []}}),
                json!({"spec": {"ports": [{"port": 1}, {"protocol": "UDP", "$patch": "delete"}]}})
            ),
            "list element at /spec/ports/1 has no `port`; elements of ports are matched by port+protocol"
        );
        assert_eq!(
            error(deployment(json!([])), deployment(json!(["app"]))),
            "list element at /spec/template/spec/containers/0 must be an object; elements of containers are matched by name"
        );
    }

    #[test]
    fn directive_errors_name_the_path() {
        assert_eq!(
            error(deployment(json!([])), json!({"metadata": {"labels": {"$patch": "merg"}}})),
            "unknown `$patch` directive at /metadata/labels/$patch: expected `replace`, `delete` or `merge`"
        );
        assert_eq!(
            error(deployment(json!([])), deployment(json!([{"name": "a", "args": [{"$patch": "delete"}]}]))),
            "directive at /spec/template/spec/containers/0/args/0/$patch: args is replaced as a whole \
             (it has no merge key), so its elements cannot carry `$patch`"
        );
        assert_eq!(
            error(deployment(json!([])), json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}})),
            "`$deleteFromPrimitiveList/finalizers` at /metadata must be a list"
        );
        assert_eq!(
            error(deployment(json!([])), json!({"$patch": "delete"})),
            "`$patch: delete` at the root of the patch would delete the whole object; drop the resource instead of patching it"
        );
        assert_eq!(error(deployment(json!([])), json!(["x"])), "the patch must be an object, not a list");
    }

    #[test]
    fn errors_never_show_values() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "stringData": {"password": "hunter2"}});
        let patches = [
            json!({"stringData": {"$retainKeys": ["other"], "password": "hunter3"}}),
            json!({"stringData": {"$patch": "hunter3"}}),
            json!({"metadata": {"finalizers": [{"$patch": "hunter3"}], "ownerReferences": [{"name": "hunter3"}]}}),
        ];
        for patch in patches {
            let err = error(secret.clone(), patch);
            assert!(!err.contains("hunter"), "{err}");
        }
    }
}
