//! `ignoreDifferences:` rules (on an environment and on a release): the fields of selected
//! objects that diff, drift and apply leave to others. This module reads and checks them; what
//! they match in an object is `weaver_plan::diff::ignore`'s.
//!
//! A rule selects objects by `group`, `kind`, `name` and `namespace` (each given must match,
//! exactly) and ignores the fields its `jsonPointers` address and those its `managers` own.
//! Pointers are RFC 6901 (`/spec/replicas`, `~1` for `/`, `~0` for `~`); in a list, a step is an
//! index, `*` (every element) or `field=value[,field=value]` (the elements with those values,
//! which for lists merged by key is their merge key: `/spec/template/spec/containers/name=istio-proxy`).

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{ObjectKeyRef, is_dns1123_label};

/// A rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct IgnoreRuleFile {
    group: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    namespace: Option<Spanned<String>>,
    json_pointers: Option<Vec<Spanned<String>>>,
    managers: Option<Vec<Spanned<String>>>,
}

/// One rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoreRule {
    /// The API group (`apps`; empty for the core group).
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub pointers: Vec<Pointer>,
    /// Field managers whose fields (per `metadata.managedFields`) are ignored.
    pub managers: Vec<String>,
    /// Where the rule is written.
    pub at: Location,
}

/// A JSON pointer, as written and as its unescaped steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointer {
    pub text: String,
    pub steps: Vec<String>,
}

/// Field managers are named by the API server's rule: at most 128 characters.
const MAX_MANAGER: usize = 128;

impl IgnoreRule {
    pub(super) fn parse(file: &Path, spanned: Spanned<IgnoreRuleFile>) -> Result<IgnoreRule> {
        let at = location(file, &spanned.referenced);
        let rule = spanned.value;
        let group = rule.group.map(|g| check(file, g, group_problem)).transpose()?;
        let kind = rule.kind.map(|k| check(file, k, kind_problem)).transpose()?;
        let name = rule.name.map(|n| check(file, n, name_problem)).transpose()?;
        let namespace = rule.namespace.map(|n| check(file, n, namespace_problem)).transpose()?;
        let pointers = rule
            .json_pointers
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let steps = Pointer::parse(&p.value).map_err(|problem| {
                    Error::at(location(file, &p.referenced), format!("`{}` is not a JSON pointer: {problem}", p.value))
                        .with_help(POINTER_HELP)
                })?;
                Ok(Pointer { text: p.value, steps })
            })
            .collect::<Result<Vec<_>>>()?;
        let managers = rule
            .managers
            .unwrap_or_default()
            .into_iter()
            .map(|m| check(file, m, manager_problem))
            .collect::<Result<Vec<_>>>()?;
        if pointers.is_empty() && managers.is_empty() {
            return Err(Error::at(at, "this ignoreDifferences rule ignores nothing").with_help(
                "give `jsonPointers` (fields by path) or `managers` (the fields those field managers own), or both",
            ));
        }
        Ok(IgnoreRule { group, kind, name, namespace, pointers, managers, at })
    }

    /// Whether the rule applies to the object `key` names.
    pub fn selects(&self, key: ObjectKeyRef<'_>) -> bool {
        let matches =
            |wanted: &Option<String>, actual: Option<&str>| wanted.as_deref().is_none_or(|w| Some(w) == actual);
        matches(&self.group, Some(key.group))
            && matches(&self.kind, Some(key.kind))
            && matches(&self.name, Some(key.name))
            && matches(&self.namespace, key.namespace)
    }

    /// The rule without where it is written, to compare definitions.
    pub(super) fn unlocated(&self) -> IgnoreRule {
        IgnoreRule { at: Location::file(""), ..self.clone() }
    }
}

const POINTER_HELP: &str = "write an RFC 6901 pointer such as /spec/replicas (~1 for '/', ~0 for '~'); in a list, a step is an index, `*` for every element, or field=value for the elements with that value, e.g. /spec/template/spec/containers/name=istio-proxy";

impl Pointer {
    /// The unescaped steps of `text`, or what is wrong with it.
    pub fn parse(text: &str) -> std::result::Result<Vec<String>, String> {
        if !text.starts_with('/') {
            return Err("it does not start with `/`".to_string());
        }
        let pointer = json_patch::jsonptr::Pointer::parse(text)
            .map_err(|_| "it has a `~` that is not `~0` or `~1`".to_string())?;
        pointer
            .tokens()
            .enumerate()
            .map(|(at, token)| {
                let step = token.decoded().into_owned();
                if step.is_empty() {
                    return Err(format!("step {} is empty", at + 1));
                }
                if step.contains('=') && selector(&step).is_none() {
                    return Err(format!("`{}` is not field=value[,field=value]", token.encoded()));
                }
                Ok(step)
            })
            .collect()
    }
}

/// `name=web` or `containerPort=80,protocol=TCP` as (field, value) pairs; None when a part is
/// not `field=value` with both sides given.
pub fn selector(step: &str) -> Option<Vec<(&str, &str)>> {
    step.split(',')
        .map(|part| {
            part.split_once('=').filter(|(field, value)| !field.is_empty() && !value.is_empty() && !value.contains('='))
        })
        .collect()
}

pub(super) fn location(file: &Path, span: &serde_saphyr::Location) -> Location {
    Location::at(file, span.line(), span.column())
}

/// The value of a selector field or a manager, or an error where it is written.
pub(super) fn check(
    file: &Path,
    spanned: Spanned<String>,
    problem: fn(&str) -> Option<(String, &'static str)>,
) -> Result<String> {
    match problem(&spanned.value) {
        None => Ok(spanned.value),
        Some((message, help)) => Err(Error::at(location(file, &spanned.referenced), message).with_help(help)),
    }
}

fn group_problem(group: &str) -> Option<(String, &'static str)> {
    if group.contains('/') {
        return Some((
            format!("`group: {group}` has a version"),
            "a group is the API group alone (`apps` for apps/v1, `\"\"` for the core group v1), as in Argo CD",
        ));
    }
    let valid = group.split('.').all(is_dns1123_label) || group.is_empty();
    (!valid).then(|| {
        (
            format!("`group: {group}` is not an API group"),
            "write the API group, e.g. apps, networking.k8s.io, or \"\" for the core group",
        )
    })
}

pub(super) fn kind_problem(kind: &str) -> Option<(String, &'static str)> {
    let valid = kind.starts_with(|c: char| c.is_ascii_uppercase()) && kind.chars().all(|c| c.is_ascii_alphanumeric());
    (!valid).then(|| {
        (
            format!("`kind: {kind}` is not a kind"),
            "write the kind as objects name it: Deployment, ConfigMap, Certificate",
        )
    })
}

fn name_problem(name: &str) -> Option<(String, &'static str)> {
    let valid =
        !name.is_empty() && name.len() <= 253 && !name.contains(|c: char| c == '/' || c == '*' || c.is_whitespace());
    (!valid).then(|| {
        (
            format!("`name: {name}` is not an object name"),
            "names match exactly (no patterns); leave `name` out to select every object of the kind",
        )
    })
}

fn namespace_problem(namespace: &str) -> Option<(String, &'static str)> {
    (!is_dns1123_label(namespace) || namespace.len() > 63).then(|| {
        (
            format!("`namespace: {namespace}` is not a namespace name"),
            "namespaces match exactly (no patterns): lowercase letters, digits and '-'",
        )
    })
}

fn manager_problem(manager: &str) -> Option<(String, &'static str)> {
    if manager == weaver_core::manifest::MANAGER {
        return Some((
            format!("`{manager}` is weaver's own field manager"),
            "its fields are what weaver applies; name the other managers whose fields to leave alone (kube-controller-manager, …)",
        ));
    }
    let valid = !manager.is_empty()
        && manager.len() <= MAX_MANAGER
        && manager.trim() == manager
        && !manager.contains(|c: char| c.is_control() || c == '*');
    (!valid).then(|| {
        (
            format!("`{manager}` is not a field manager name"),
            "name a field manager exactly as metadata.managedFields lists it (kubectl get -o yaml --show-managed-fields), e.g. kube-controller-manager; no patterns",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_rfc_6901_with_list_steps() {
        assert_eq!(Pointer::parse("/spec/replicas").unwrap(), ["spec", "replicas"]);
        assert_eq!(
            Pointer::parse("/metadata/annotations/cert-manager.io~1inject-ca-from").unwrap(),
            ["metadata", "annotations", "cert-manager.io/inject-ca-from"]
        );
        assert_eq!(Pointer::parse("/a~0b/*/0").unwrap(), ["a~b", "*", "0"]);
        assert_eq!(
            Pointer::parse("/spec/ports/port=80,protocol=UDP").unwrap(),
            ["spec", "ports", "port=80,protocol=UDP"]
        );
        for (bad, why) in [
            ("spec/replicas", "it does not start with `/`"),
            ("", "it does not start with `/`"),
            ("/spec//replicas", "step 2 is empty"),
            ("/spec/", "step 2 is empty"),
            ("/a~2", "it has a `~` that is not `~0` or `~1`"),
            ("/containers/name=", "`name=` is not field=value[,field=value]"),
            ("/containers/=web", "`=web` is not field=value[,field=value]"),
            ("/containers/name=a,b", "`name=a,b` is not field=value[,field=value]"),
        ] {
            assert_eq!(Pointer::parse(bad).unwrap_err(), why, "{bad}");
        }
    }

    #[test]
    fn rules_select_by_every_field_given() {
        let rule = |group: Option<&str>, kind: Option<&str>, name: Option<&str>, namespace: Option<&str>| IgnoreRule {
            group: group.map(String::from),
            kind: kind.map(String::from),
            name: name.map(String::from),
            namespace: namespace.map(String::from),
            pointers: Vec::new(),
            managers: vec!["m".into()],
            at: Location::file(""),
        };
        let key = |group, kind, namespace, name| ObjectKeyRef { group, kind, namespace, name };
        let web = key("apps", "Deployment", Some("shop"), "web");
        assert!(rule(None, None, None, None).selects(web));
        assert!(rule(Some("apps"), Some("Deployment"), Some("web"), Some("shop")).selects(web));
        assert!(!rule(Some(""), Some("Deployment"), None, None).selects(web));
        assert!(!rule(None, Some("Deployment"), Some("api"), None).selects(web));
        assert!(!rule(None, None, None, Some("other")).selects(web));
        assert!(rule(Some(""), Some("ConfigMap"), None, None).selects(key("", "ConfigMap", Some("shop"), "c")));
        assert!(!rule(None, None, None, Some("shop")).selects(key("", "Namespace", None, "shop")));
    }

    #[test]
    fn selectors_and_managers_are_checked() {
        assert!(group_problem("apps").is_none() && group_problem("").is_none());
        assert!(group_problem("networking.k8s.io").is_none());
        assert_eq!(group_problem("apps/v1").unwrap().0, "`group: apps/v1` has a version");
        assert!(group_problem("Apps").is_some());
        assert!(kind_problem("Deployment").is_none());
        assert!(kind_problem("deployment").is_some() && kind_problem("Deploy ment").is_some());
        assert!(name_problem("web").is_none() && name_problem("system:reader").is_none());
        assert!(name_problem("web-*").is_some() && name_problem("").is_some());
        assert!(namespace_problem("shop").is_none() && namespace_problem("Shop").is_some());
        assert!(manager_problem("kube-controller-manager").is_none());
        assert!(manager_problem("weaver").is_some());
        for bad in ["", " hpa", "kube-*", &"m".repeat(129)] {
            assert!(manager_problem(bad).is_some(), "{bad:?}");
        }
    }
}
