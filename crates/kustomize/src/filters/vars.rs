//! `vars`: kustomize's legacy variables. At the end of the kustomization that declares it, a
//! variable is attached to the one object of that kustomization its `objref` names (by group,
//! version, kind and name, and namespace if given; by any name the object has had); the
//! kustomizations that include it take it as it is; two variables of one name are an error.
//! Once the whole build is done and every name is final, each `$(NAME)` in the fields the
//! configuration's `varReference` lists (strings, lists of strings, maps of strings) becomes
//! the variable's field of its object: the value itself, typed, where the string is nothing
//! but `$(NAME)`; `$$` is a `$`; an unknown name stays as written.

use serde_json::Value;

use super::super::Resource;
use super::super::kustomization::Var;
use super::TransformerConfig;
use super::replacements::{Selection, ids, lookup, split_path};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::Scopes;

/// A var with where it is defined, which its errors name.
#[derive(Debug, Clone)]
pub struct DefinedVar {
    pub var: Var,
    pub at: Location,
}

/// Attaches `incoming`, the vars a kustomization declares, to the objects of that
/// kustomization they name (`resources`: what it has built, its bases' and components'
/// included) and adds them to `vars` (kustomize's `MergeVars`).
pub fn attach(incoming: &[DefinedVar], vars: &mut Vec<DefinedVar>, resources: &mut [Resource]) -> Result<()> {
    let scopes = Scopes::default();
    for defined in incoming {
        let (var, o) = (&defined.var, &defined.var.objref);
        let (group, version) = match o.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None if !o.api_version.is_empty() => ("", o.api_version.as_str()),
            None => (o.group.as_str(), o.version.as_str()),
        };
        let wanted = Selection { group, version, kind: &o.kind, name: &o.name, namespace: &o.namespace };
        let matched: Vec<usize> = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| ids(r).iter().any(|id| id.is(&wanted, &scopes)))
            .map(|(index, _)| index)
            .collect();
        match matched.as_slice() {
            [one] => resources[*one].ref_vars.push(var.name.clone()),
            [] => {}
            many => {
                let named: Vec<String> = many.iter().map(|&i| resources[i].describe()).collect();
                return Err(Error::at(
                    defined.at.clone(),
                    format!("`vars`: var `{}` names {}: unable to tell which", var.name, named.join(" and ")),
                ));
            }
        }
    }
    merge(incoming, vars)
}

/// Adds a base's vars, already attached to its objects, to `vars` (kustomize's
/// `MergeAccumulator`): the kustomization that includes the base does not look for their
/// objects again, so two bases may each name their own `Service svc`.
pub fn merge(incoming: &[DefinedVar], vars: &mut Vec<DefinedVar>) -> Result<()> {
    for defined in incoming {
        if let Some(first) = vars.iter().find(|v| v.var.name == defined.var.name) {
            return Err(Error::at(
                defined.at.clone(),
                format!("`vars`: var `{}` is defined twice (first at {})", defined.var.name, first.at),
            ));
        }
        vars.push(defined.clone());
    }
    Ok(())
}

/// Replaces every `$(NAME)` of `vars` in the fields `config.var_reference` lists.
pub fn resolve(vars: &[DefinedVar], config: &TransformerConfig, resources: &mut [Resource]) -> Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(&str, Value)> = Vec::new();
    for DefinedVar { var, at } in vars {
        let field = var.fieldref.as_ref().map_or("", |f| f.fieldpath.as_str());
        let field = if field.is_empty() { "metadata.name" } else { field };
        let Some(object) = resources.iter().find(|r| r.ref_vars.contains(&var.name)) else {
            return Err(Error::at(
                at.clone(),
                format!("`vars`: var `{}` cannot be mapped to a field of any object of the build", var.name),
            )
            .with_help("its `objref` must name one object of the kustomization (group, version, kind and name)"));
        };
        let value = lookup(&object.object, &with_positions(split_path(field)))
            .map_err(|e| Error::at(at.clone(), format!("`vars`: var `{}`: {e}", var.name)))?
            .filter(|v| !v.is_object() && !v.is_array() && !v.is_null())
            .ok_or_else(|| {
                Error::at(
                    at.clone(),
                    format!("`vars`: var `{}`: {} has no scalar field `{field}`", var.name, object.describe()),
                )
            })?;
        values.push((&var.name, value.clone()));
    }
    let mapping = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
    for resource in resources.iter_mut() {
        let specs: Vec<_> = config.var_reference.iter().filter(|s| s.selects(resource)).cloned().collect();
        for spec in &specs {
            super::visit(&mut resource.object, spec, &|| Value::Null, &mut |field| {
                match field {
                    Value::String(text) => *field = expand(text, &mapping),
                    Value::Array(items) => {
                        for item in items {
                            match item {
                                Value::String(text) => *item = expand(text, &mapping),
                                _ => return Err(format!("`{}` holds a value that is not a string", spec.path)),
                            }
                        }
                    }
                    Value::Object(map) => {
                        for value in map.values_mut() {
                            if let Value::String(text) = value {
                                *value = expand(text, &mapping);
                            }
                        }
                    }
                    _ => {}
                }
                Ok(())
            })
            .map_err(|e| {
                Error::at(Location::file(&resource.source), format!("`vars`: {e}"))
                    .with_help(format!("in {}, a field vars are replaced in", resource.describe()))
            })?;
        }
    }
    Ok(())
}

/// `parts` with each `name[N]` as `name` and the position `N` (kyaml's `convertSliceIndex`,
/// which reads a var's `fieldpath`: `spec.ports[0].port`).
fn with_positions(parts: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for part in parts {
        let position = part
            .strip_suffix(']')
            .and_then(|p| p.rsplit_once('['))
            .filter(|(_, digits)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        match position {
            Some((name, digits)) => {
                out.extend((!name.is_empty()).then(|| name.to_string()));
                out.push(digits.to_string());
            }
            None => out.push(part),
        }
    }
    out
}

/// kustomize's `DoReplacements`: `$(NAME)` with `mapping`'s value (typed when it is the whole
/// string), `$$` as `$`, anything else as written.
fn expand(input: &str, mapping: &dyn Fn(&str) -> Option<Value>) -> Value {
    let mut out = String::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.is_empty() {
            out.push('$');
            rest = after;
            break;
        }
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(close) => {
                    let name = &inner[..close];
                    match mapping(name) {
                        Some(value) if input == format!("$({name})") => return value,
                        Some(Value::String(s)) => out.push_str(&s),
                        Some(value) => out.push_str(&value.to_string()),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &inner[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fieldpath_s_list_positions_are_parts_of_their_own() {
        let parts = |path: &str| with_positions(split_path(path));
        assert_eq!(parts("spec.ports[0].port"), ["spec", "ports", "0", "port"]);
        assert_eq!(parts("spec.ports.[1]"), ["spec", "ports", "1"]);
        assert_eq!(parts("data.a[b]"), ["data", "a[b]"]);
        assert_eq!(parts("spec.ports[name=http].port"), ["spec", "ports[name=http]", "port"]);
    }

    #[test]
    fn references_expand_as_kustomize_expands_them() {
        let mapping = |name: &str| match name {
            "HOST" => Some(Value::String("db".into())),
            "PORT" => Some(Value::from(5432)),
            _ => None,
        };
        let cases = [
            ("$(HOST):$(PORT)", Value::String("db:5432".into())),
            ("$(PORT)", Value::from(5432)),
            ("$$(HOST) $(OTHER) $(", Value::String("$(HOST) $(OTHER) $(".into())),
            ("cost: 5$", Value::String("cost: 5$".into())),
            ("a$b", Value::String("a$b".into())),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &mapping), want, "{input}");
        }
    }
}
