//! `replacements`: kustomize's replacement transformer (v5.5), the last transformation of a
//! kustomization. Each replacement reads one field of the one object its `source` selects and
//! writes it to fields of every object a target selects, by any id the object has had.
//!
//! Field paths are kyaml's: `.`-separated (`\.` for a dot inside a name, `[a.b]` too), with
//! `[name=value]` for list elements and a number for a position. Sources match `[name=value]`
//! exactly; targets match it as an unanchored regular expression and also take `*` (every
//! element), as kyaml's `PathGetter` and `PathMatcher` do. A target field that is missing is an
//! error unless `options.create` is set. A scalar keeps its type where it was one (`replicas: 1`
//! takes `"3"` as the number 3), and a created one is read as YAML reads a plain scalar.

use serde_json::{Map, Value};

use super::super::kustomization::{Kustomization, Replacement, ReplacementSource, Selector};
use super::super::{Resource, Target};
use super::{gvk_selects, metadata_matches, metadata_selector};
use weaver_core::error::Result;
use weaver_core::manifest::Scopes;

const DEFAULT_FIELD_PATH: &str = "metadata.name";

pub(crate) fn run(target: &Target, k: &Kustomization, resources: &mut [Resource]) -> Result<()> {
    for entry in k.replacements.iter().flatten() {
        let at = &entry.referenced;
        let replacements = match &entry.value.path {
            Some(_) if entry.value.source.is_some() || entry.value.targets.is_some() => {
                return Err(
                    target.error(at, "`replacements`: an entry has either `path` or `source` and `targets`, not both")
                );
            }
            Some(path) => {
                let (file, text) = target.read_file(path, at, "replacements")?;
                let what = "invalid replacements (expected a replacement or a list of them)";
                let parsed: Option<Value> = weaver_yaml::from_str_as(&file, &text, what)?;
                let parsed = match parsed {
                    Some(list @ Value::Array(_)) => serde_json::from_value::<Vec<Replacement>>(list),
                    Some(one @ Value::Object(_)) => serde_json::from_value::<Replacement>(one).map(|r| vec![r]),
                    _ => {
                        return Err(target.error(
                            at,
                            format!(
                                "`replacements`: {} holds no replacement: expected a mapping or a list",
                                file.display()
                            ),
                        ));
                    }
                };
                parsed.map_err(|e| target.error(at, format!("`replacements`: {}: {e}", file.display())))?
            }
            None => vec![Replacement { source: entry.value.source.clone(), targets: entry.value.targets.clone() }],
        };
        for replacement in &replacements {
            target.go_on()?;
            apply(replacement, resources).map_err(|e| target.error(at, format!("`replacements`: {e}")))?;
        }
    }
    Ok(())
}

fn apply(replacement: &Replacement, resources: &mut [Resource]) -> Result<(), String> {
    let (Some(source), Some(targets)) = (&replacement.source, &replacement.targets) else {
        return Err("a replacement needs a `source` and at least one target".into());
    };
    let value = source_value(source, resources)?;
    let scopes = Scopes::default();
    for selector in targets {
        let Some(select) = &selector.select else {
            return Err("a target needs `select`, the objects to write to".into());
        };
        let field_paths = if selector.field_paths.is_empty() {
            vec![DEFAULT_FIELD_PATH.to_string()]
        } else {
            selector.field_paths.clone()
        };
        let options = selector.options.clone().unwrap_or_default();
        let labels = metadata_selector(&select.label_selector)?;
        let annotations = metadata_selector(&select.annotation_selector)?;
        let rejects: Vec<(Option<_>, Option<_>)> = selector
            .reject
            .iter()
            .map(|r| Ok((metadata_selector(&r.label_selector)?, metadata_selector(&r.annotation_selector)?)))
            .collect::<Result<_, String>>()?;
        for resource in resources.iter_mut() {
            if !metadata_matches(resource, "labels", labels.as_ref())
                || !metadata_matches(resource, "annotations", annotations.as_ref())
            {
                continue;
            }
            let rejected_by_metadata = rejects.iter().any(|(l, a)| {
                (l.is_some() || a.is_some())
                    && metadata_matches(resource, "labels", l.as_ref())
                    && metadata_matches(resource, "annotations", a.as_ref())
            });
            let ids = ids(resource);
            let rejected_by_id = selector
                .reject
                .iter()
                .filter(|r| !id_selector_is_empty(r))
                .any(|r| ids.iter().any(|id| id.selected_by(&selection(r), &scopes)));
            if rejected_by_metadata
                || rejected_by_id
                || !ids.iter().any(|id| id.selected_by(&selection(select), &scopes))
            {
                continue;
            }
            for path in &field_paths {
                let parts = split_path(path);
                let create = options.create.then(|| Created::for_value(&value));
                let mut set = |field: &mut Value| set_field(field, &value, &options);
                let found = matched(&mut resource.object, &parts, create, &mut set)
                    .map_err(|e| format!("field `{path}` of {}: {e}", resource.describe()))?;
                if found == 0 && options.create {
                    return Err(format!("unable to find or create field `{path}` in {}", resource.describe()));
                }
                if found == 0 {
                    return Err(format!(
                        "unable to find field `{path}` in {} (`options: {{create: true}}` on the target creates it)",
                        resource.describe()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The value the source selects, refined by its delimiter options.
fn source_value(source: &ReplacementSource, resources: &[Resource]) -> Result<Value, String> {
    let scopes = Scopes::default();
    let wanted = Selection {
        group: &source.group,
        version: &source.version,
        kind: &source.kind,
        name: &source.name,
        namespace: &source.namespace,
    };
    let mut matches = resources.iter().filter(|r| ids(r).iter().any(|id| id.selected_by(&wanted, &scopes)));
    let Some(object) = matches.next() else {
        return Err(format!("no object is selected by the source {}", wanted.describe()));
    };
    if let Some(other) = matches.next() {
        return Err(format!(
            "the source {} selects more than one object: {} and {}",
            wanted.describe(),
            object.describe(),
            other.describe()
        ));
    }
    let field_path = if source.field_path.is_empty() { DEFAULT_FIELD_PATH } else { &source.field_path };
    let value = lookup(&object.object, &split_path(field_path))?
        .filter(|v| !is_nil_or_empty(v))
        .ok_or_else(|| format!("the source field `{field_path}` of {} is missing", object.describe()))?;
    let Some(options) = source.options.as_ref().filter(|o| !o.delimiter.is_empty()) else {
        return Ok(value.clone());
    };
    let Some(text) = scalar_text(value) else {
        return Err("`options.delimiter` can only be used with a scalar source field".into());
    };
    let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
    usize::try_from(options.index)
        .ok()
        .and_then(|index| parts.get(index))
        .map(|part| Value::String(part.to_string()))
        .ok_or_else(|| {
            format!(
                "the source's `options.index` {} is out of bounds: its field has {} parts split at `{}`",
                options.index,
                parts.len(),
                options.delimiter
            )
        })
}

/// kyaml's `IsNilOrEmpty`: null, an empty map or an empty list (an empty string is a value).
fn is_nil_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// An object's ids: its current one and every one it had before a rename (kustomize's
/// `MakeResIds`).
pub(super) fn ids(resource: &Resource) -> Vec<Id<'_>> {
    let (group, version) = (resource.group(), resource.version());
    let current = Id { group, version, kind: resource.kind(), name: resource.name(), namespace: resource.namespace() };
    let previous =
        resource.prev.iter().map(|p| Id { group, version, kind: &p.kind, name: &p.name, namespace: &p.namespace });
    std::iter::once(current).chain(previous).collect()
}

pub(super) struct Id<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
}

/// What a source or target selects by id: every part given must be equal (kustomize's
/// `ResId.IsSelectedBy`; names are exact here, not patterns as in `patches`).
pub(super) struct Selection<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
}

fn selection(selector: &Selector) -> Selection<'_> {
    Selection {
        group: &selector.group,
        version: &selector.version,
        kind: &selector.kind,
        name: &selector.name,
        namespace: &selector.namespace,
    }
}

fn id_selector_is_empty(selector: &Selector) -> bool {
    [&selector.group, &selector.version, &selector.kind, &selector.name, &selector.namespace]
        .iter()
        .all(|part| part.is_empty())
}

impl Selection<'_> {
    fn describe(&self) -> String {
        let parts = [
            ("group", self.group),
            ("version", self.version),
            ("kind", self.kind),
            ("name", self.name),
            ("namespace", self.namespace),
        ];
        let given: Vec<String> =
            parts.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}: {v}")).collect();
        if given.is_empty() { "{} (every object)".into() } else { format!("{{{}}}", given.join(", ")) }
    }
}

impl Id<'_> {
    /// kustomize's `ResId.GvknEquals`, and `Equals` (the effective namespace too) where `s`
    /// gives a namespace: how a var's `objref` names its object.
    pub(super) fn is(&self, s: &Selection, scopes: &Scopes) -> bool {
        self.group == s.group
            && self.version == s.version
            && self.kind == s.kind
            && self.name == s.name
            && (s.namespace.is_empty()
                || effective_namespace(s.group, s.version, s.kind, s.namespace, scopes)
                    == effective_namespace(self.group, self.version, self.kind, self.namespace, scopes))
    }

    fn selected_by(&self, s: &Selection, scopes: &Scopes) -> bool {
        (s.name.is_empty() || s.name == self.name)
            && (s.namespace.is_empty()
                || effective_namespace(s.group, s.version, s.kind, s.namespace, scopes)
                    == effective_namespace(self.group, self.version, self.kind, self.namespace, scopes))
            && gvk_selects(s.group, s.version, s.kind, self.group, self.version, self.kind)
    }
}

/// kustomize's `EffectiveNamespace`: cluster-scoped kinds have none, and no namespace is
/// `default`.
fn effective_namespace<'a>(group: &str, version: &str, kind: &str, namespace: &'a str, scopes: &Scopes) -> &'a str {
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    if !kind.is_empty() && !scopes.is_namespaced(&api_version, kind) {
        "~X"
    } else if namespace.is_empty() {
        "default"
    } else {
        namespace
    }
}

/// kyaml's `SmarterPathSplitter`: split at `.` (not `\.`); a bracketed part stays whole, with
/// its brackets if it matches list elements (`[name=x.y]`), without them if it is a key
/// (`[app.kubernetes.io/name]`).
pub(super) fn split_path(path: &str) -> Vec<String> {
    let mut split: Vec<String> = Vec::new();
    let mut pieces = path.split('.');
    if path.starts_with('.') && path.len() > 1 {
        pieces.next();
    }
    for piece in pieces {
        match split.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(piece);
            }
            _ => split.push(piece.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut parts = split.into_iter();
    while let Some(part) = parts.next() {
        if part.starts_with('[') && !part.ends_with(']') {
            let mut bracketed = vec![part];
            for next in parts.by_ref() {
                let done = next.ends_with(']');
                bracketed.push(next);
                if done {
                    break;
                }
            }
            let joined = bracketed.join(".");
            out.push(if joined.contains('=') { joined } else { joined.trim_matches(['[', ']']).to_string() });
        } else {
            out.push(part);
        }
    }
    out.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// A `[name=value]` part: the field (empty for a list of scalars) and the value.
fn list_match(part: &str) -> Option<Result<(&str, &str), String>> {
    let inner = part.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split_once('=').ok_or_else(|| format!("`{part}` must be `[field=value]` to match a list element")))
}

fn index(part: &str) -> Option<usize> {
    part.parse::<usize>().ok().filter(|_| part.bytes().all(|b| b.is_ascii_digit()))
}

/// The field `parts` lead to, as kyaml's `PathGetter` finds it: `[field=value]` matches
/// exactly, a number is a position and `-` the last element.
pub(super) fn lookup<'v>(node: &'v Value, parts: &[String]) -> Result<Option<&'v Value>, String> {
    let Some((part, rest)) = parts.split_first() else { return Ok(Some(node)) };
    let next = if let Some(position) = index(part) {
        node.as_array().and_then(|items| items.get(position))
    } else if part == "-" {
        node.as_array().and_then(|items| items.last())
    } else if part == "*" {
        return Err("a source field path cannot use `*`".into());
    } else if let Some(matcher) = list_match(part) {
        let (field, value) = matcher?;
        node.as_array().and_then(|items| {
            items.iter().find(|item| {
                let text = if field.is_empty() { Some(*item) } else { item.get(field) };
                text.and_then(scalar_text).as_deref() == Some(value)
            })
        })
    } else {
        node.get(part.as_str())
    };
    match next {
        Some(next) => lookup(next, rest),
        None => Ok(None),
    }
}

/// What a created field holds before it is set: kyaml creates the leaf of the value's kind.
#[derive(Clone, Copy)]
enum Created {
    Scalar,
    Map,
    List,
}

impl Created {
    fn for_value(value: &Value) -> Created {
        match value {
            Value::Object(_) => Created::Map,
            Value::Array(_) => Created::List,
            _ => Created::Scalar,
        }
    }

    /// A field created for `next`, the part after it (none: the leaf).
    fn node(self, next: Option<&String>) -> Value {
        match next {
            Some(part) if index(part).is_some() || list_match(part).is_some() => Value::Array(Vec::new()),
            Some(_) => Value::Object(Map::new()),
            None => match self {
                Created::Scalar => Value::Null,
                Created::Map => Value::Object(Map::new()),
                Created::List => Value::Array(Vec::new()),
            },
        }
    }
}

/// Calls `set` on every field `parts` lead to, as kyaml's `PathMatcher` walks: `[field=regex]`
/// on every element whose field matches (unanchored), `*` on every element, a number on one
/// element; missing parts are created when `create` says with what. Returns how many fields
/// were set.
fn matched(
    node: &mut Value,
    parts: &[String],
    create: Option<Created>,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<usize, String> {
    let Some((part, rest)) = parts.split_first() else {
        set(node)?;
        return Ok(1);
    };
    let kind = kind_name(node);
    if let Some(position) = index(part) {
        let Value::Array(items) = node else { return Err(format!("`{part}` needs a list, found {kind}")) };
        if let Some(created) = create.filter(|_| items.len() == position) {
            items.push(created.node(rest.first()));
        }
        let count = items.len();
        let item = items
            .get_mut(position)
            .ok_or_else(|| format!("index {position} specified but only {count} elements found"))?;
        return matched(item, rest, create, set);
    }
    if part == "*" {
        let Value::Array(items) = node else { return Err(format!("`*` needs a list, found {kind}")) };
        let mut total = 0;
        for item in items {
            total += matched(item, rest, create, set)?;
        }
        return Ok(total);
    }
    if let Some(matcher) = list_match(part) {
        let (field, pattern) = matcher?;
        let regex =
            regex::Regex::new(pattern).map_err(|_| format!("`{part}`: `{pattern}` is not a regular expression"))?;
        let Value::Array(items) = node else { return Err(format!("`{part}` needs a list, found {kind}")) };
        let is_match = |item: &Value| {
            let text = if field.is_empty() { Some(item) } else { item.as_object().and_then(|m| m.get(field)) };
            text.and_then(scalar_text).is_some_and(|t| regex.is_match(t.trim()))
        };
        if create.is_some() && !items.iter().any(is_match) {
            let value = Value::String(pattern.to_string());
            items.push(if field.is_empty() {
                value
            } else {
                Value::Object(Map::from_iter([(field.to_string(), value)]))
            });
        }
        let mut total = 0;
        for item in items.iter_mut() {
            if is_match(item) {
                total += matched(item, rest, create, set)?;
            }
        }
        return Ok(total);
    }
    if node.is_null() && create.is_some() {
        *node = Value::Object(Map::new());
    }
    match node {
        Value::Object(map) => {
            if !map.contains_key(part.as_str()) {
                let Some(created) = create else { return Ok(0) };
                map.insert(part.clone(), created.node(rest.first()));
            }
            matched(map.get_mut(part.as_str()).expect("present or just created"), rest, create, set)
        }
        Value::Null => Ok(0),
        _ => Err(format!("`{part}` needs a mapping, found {kind}")),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "a mapping",
        Value::Array(_) => "a list",
        Value::Null => "null",
        _ => "a scalar",
    }
}

/// The text of a scalar, as YAML writes it plain.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// kustomize's `setFieldValue`: a scalar target takes the value's text and keeps its type; a
/// created (or null) one is read as a plain YAML scalar; anything else is replaced.
fn set_field(
    field: &mut Value,
    value: &Value,
    options: &super::super::kustomization::FieldOptions,
) -> Result<(), String> {
    let mut text = scalar_text(value);
    if !options.delimiter.is_empty() {
        let current = match &*field {
            Value::Null => String::new(),
            other => scalar_text(other).ok_or("`options.delimiter` can only be used with a scalar target field")?,
        };
        let mut parts: Vec<String> = current.split(options.delimiter.as_str()).map(str::to_string).collect();
        let new = text.clone().unwrap_or_default();
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, new),
            Ok(index) if index >= parts.len() => parts.push(new),
            Ok(index) => parts[index] = new,
        }
        text = Some(parts.join(&options.delimiter));
    }
    let Some(text) = text else {
        *field = value.clone();
        return Ok(());
    };
    *field = match &*field {
        Value::String(_) => Value::String(text),
        Value::Number(_) | Value::Bool(_) => typed_as(field, &text)?,
        Value::Null => plain_scalar(&text),
        Value::Object(_) | Value::Array(_) => value.clone(),
    };
    Ok(())
}

/// `text` set into the number or boolean `field`, as kyaml sets it: the field keeps its tag and
/// go-yaml v3 must read the text as one (`1__0` and `017` are integers, `True` a boolean; a
/// float field takes an integer too), else kustomize fails, and so does this (without the
/// value, which kustomize shows).
fn typed_as(field: &Value, text: &str) -> Result<Value, String> {
    use weaver_yaml::resolve::{Dialect, resolve};
    let (is_float, kind) = match field {
        Value::Number(n) if n.is_f64() => (true, "a number"),
        Value::Number(_) => (false, "an integer"),
        _ => (false, "true or false"),
    };
    // The value is not shown: a replacement may copy it from a Secret.
    match (field, resolve(text, Dialect::GoYamlV3).into_json(text)) {
        (Value::Number(_), Ok(Value::Number(n))) if is_float || !n.is_f64() => Ok(Value::Number(n)),
        (Value::Bool(_), Ok(Value::Bool(b))) => Ok(Value::Bool(b)),
        (Value::Number(_), Err(_)) if is_float => {
            Err("the source's value is an infinity or not a number, which the target field cannot hold".into())
        }
        _ => Err(format!("the source's value does not read as {kind}, which the target field holds")),
    }
}

/// `text` as a plain YAML scalar reads under kyaml (go-yaml v3): a number, a boolean or a null
/// if it spells one (`null`, `~`, nothing), else the string (`.inf` and `.nan` too: JSON holds
/// no such number).
fn plain_scalar(text: &str) -> Value {
    use weaver_yaml::resolve::{Dialect, resolve};
    resolve(text, Dialect::GoYamlV3).into_json(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_as_kyaml_splits_them() {
        assert_eq!(
            split_path("spec.template.spec.containers.[name=app].image"),
            ["spec", "template", "spec", "containers", "[name=app]", "image"]
        );
        assert_eq!(
            split_path("metadata.annotations.[config.kubernetes.io/local]"),
            ["metadata", "annotations", "config.kubernetes.io/local"]
        );
        assert_eq!(split_path(r"data.app\.yaml"), ["data", "app.yaml"]);
        assert_eq!(split_path("spec.containers.[name=a.b].image"), ["spec", "containers", "[name=a.b]", "image"]);
        assert_eq!(split_path("spec.ports.0.port"), ["spec", "ports", "0", "port"]);
    }

    #[test]
    fn a_created_scalar_reads_as_plain_yaml() {
        assert_eq!(plain_scalar("8080"), Value::from(8080));
        assert_eq!(plain_scalar("true"), Value::Bool(true));
        assert_eq!(plain_scalar("yes"), Value::String("yes".into()));
        assert_eq!(plain_scalar("a: b"), Value::String("a: b".into()));
        assert_eq!(plain_scalar("1.5"), Value::from(1.5));
        // As `kubectl kustomize` sets a created field: underscores dropped, past i64 unsigned,
        // past f64's range text.
        assert_eq!(plain_scalar("1__0"), Value::from(10));
        assert_eq!(plain_scalar("1_0.5"), Value::from(10.5));
        assert_eq!(plain_scalar("017"), Value::from(15));
        assert_eq!(plain_scalar("9223372036854775808"), Value::from(1u64 << 63));
        assert_eq!(plain_scalar("1e400"), Value::String("1e400".into()));
        assert_eq!(plain_scalar("null"), Value::Null);
        assert_eq!(plain_scalar("~"), Value::Null);
        assert_eq!(plain_scalar(""), Value::Null);
    }

    #[test]
    fn targets_match_list_elements_by_unanchored_pattern() {
        let mut object =
            serde_json::json!({"containers": [{"name": "app"}, {"name": "app-sidecar"}, {"name": "other"}]});
        let parts = split_path("containers.[name=app].image");
        let mut set = |f: &mut Value| {
            *f = Value::String("x".into());
            Ok(())
        };
        assert_eq!(matched(&mut object, &parts, None, &mut set).unwrap(), 0, "missing fields are not created");
        assert_eq!(matched(&mut object, &parts, Some(Created::Scalar), &mut set).unwrap(), 2);
        assert_eq!(object["containers"][1]["image"], "x");
        assert!(object["containers"][2].get("image").is_none());
    }

    #[test]
    fn a_scalar_target_keeps_its_type() {
        let options = Default::default();
        let mut replicas = Value::from(1);
        set_field(&mut replicas, &Value::String("3".into()), &options).unwrap();
        assert_eq!(replicas, Value::from(3));
        let mut port = Value::String("http".into());
        set_field(&mut port, &Value::from(8080), &options).unwrap();
        assert_eq!(port, Value::String("8080".into()));
        // As kubectl kustomize sets them: the text read as go-yaml v3 reads it, into the type.
        for (field, text, want) in [
            (Value::from(1), "1__0", Value::from(10)),
            (Value::from(1), "017", Value::from(15)),
            (Value::from(2.5), "1__0", Value::from(10)),
            (Value::from(2.5), "1.5", Value::from(1.5)),
            (Value::Bool(false), "True", Value::Bool(true)),
        ] {
            let mut set = field.clone();
            set_field(&mut set, &Value::String(text.into()), &options).unwrap();
            assert_eq!(set, want, "`{text}` into {field}");
        }
        // What kubectl kustomize refuses ("cannot decode !!str `abc` as a !!int").
        for (field, text) in [(Value::from(1), "abc"), (Value::from(1), "1.5"), (Value::Bool(true), "yes")] {
            let err = set_field(&mut field.clone(), &Value::String(text.into()), &options).unwrap_err();
            assert!(err.contains("does not read as") && !err.contains(text), "{err}");
        }
    }

    #[test]
    fn delimiters_replace_prefix_or_append_a_part() {
        let mut options =
            super::super::super::kustomization::FieldOptions { delimiter: ":".into(), ..Default::default() };
        let value = Value::String("v2".into());
        for (index, want) in [(1, "img:v2"), (-1, "v2:img:v1"), (5, "img:v1:v2")] {
            options.index = index;
            let mut field = Value::String("img:v1".into());
            set_field(&mut field, &value, &options).unwrap();
            assert_eq!(field, Value::String(want.into()), "index {index}");
        }
    }
}
