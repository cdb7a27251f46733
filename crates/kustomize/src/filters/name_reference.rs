//! Name references: once the names are final (prefixes, suffixes, content hashes), every field
//! `nameReference` table (the built-in one and the kustomization's `configurations`) lists that names a renamed object by one of its previous
//! names gets its current name, as kustomize's `nameref` filter does it: among the objects the
//! referrer can name (see `Reach`), candidates by previous
//! name and kind, then a `roleRef`'s kind, then the referrer's namespace (cluster-scoped objects
//! and ServiceAccounts are seen from every namespace), then, of the copies of one base reached
//! along different paths, the one given the referrer's prefixes and suffixes; a field that could
//! still mean objects of different names is an error.

use serde_json::Value;

use super::super::{Resource, same_namespace};
use super::{BackReference, TransformerConfig, gvk_selects};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::Scopes;

pub fn fix(config: &TransformerConfig, resources: &mut [Resource]) -> Result<()> {
    let scopes = Scopes::default();
    // Taken before any field changes, as kustomize takes each referrer's candidates.
    let reaches: Vec<Reach> = resources.iter().map(|r| Reach::of(r, &scopes)).collect::<Result<_>>()?;
    for backref in &config.name_reference {
        for spec in &backref.field_specs {
            for referrer in 0..resources.len() {
                // The object is copied to be changed (the context reads the others meanwhile):
                // only when the path leads somewhere in it.
                if !spec.selects(&resources[referrer]) || !super::leads_to_a_field(&resources[referrer].object, spec) {
                    continue;
                }
                let mut object = resources[referrer].object.clone();
                let context = Context {
                    backref,
                    resources,
                    referrer: &resources[referrer],
                    reach: &reaches[referrer],
                    scopes: &scopes,
                    path: &spec.path,
                };
                super::visit(&mut object, spec, &|| Value::Null, &mut |field| context.set(field)).map_err(|e| {
                    Error::at(Location::file(&resources[referrer].source), e)
                        .with_help(format!("in the name references of {}", resources[referrer].describe()))
                })?;
                resources[referrer].object = object;
            }
        }
    }
    Ok(())
}

/// kustomize's `PrefixesSuffixesEquals`: the prefixes of one end as the other's do, and the
/// suffixes alike; with `allow_empty`, an object without prefixes (or suffixes) matches any.
fn affixes_end_alike(a: &Resource, b: &Resource, allow_empty: bool) -> bool {
    let alike = |x: &[String], y: &[String]| {
        (allow_empty && (x.is_empty() || y.is_empty())) || {
            let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
            long.ends_with(short) && (!short.is_empty() || long.is_empty())
        }
    };
    alike(&a.prefixes, &b.prefixes) && alike(&a.suffixes, &b.suffixes)
}

/// The objects a referrer can name, kustomize's `SubsetThatCouldBeReferencedByResource`: any,
/// from a cluster-scoped referrer; otherwise the cluster-scoped ones, those of its namespace,
/// and those of the namespaces its ServiceAccount subjects name (a RoleBinding's). A subject
/// without a namespace so resolves among its own RoleBinding's namespace, even where one build
/// holds that ServiceAccount in several namespaces.
enum Reach {
    Any,
    Namespaces(Vec<String>),
}

impl Reach {
    /// A RoleBinding's ServiceAccount subject with a `namespace` that is no string (`namespace:`
    /// left empty) is an error, kustomize's "namespace is blank for resource".
    fn of(referrer: &Resource, scopes: &Scopes) -> Result<Self> {
        if !scopes.is_namespaced(referrer.api_version(), referrer.kind()) {
            return Ok(Reach::Any);
        }
        let mut namespaces = vec![referrer.namespace().to_string()];
        if referrer.kind() == "RoleBinding"
            && let Some(Value::Array(subjects)) = referrer.object.get("subjects")
        {
            let accounts = subjects.iter().filter(|s| s.get("kind").and_then(Value::as_str) == Some("ServiceAccount"));
            for (index, subject) in accounts.enumerate() {
                match subject.get("namespace") {
                    None => {}
                    Some(Value::String(namespace)) => namespaces.push(namespace.clone()),
                    Some(_) => {
                        let name = subject.get("name").and_then(Value::as_str).unwrap_or_default();
                        return Err(Error::at(
                            Location::file(&referrer.source),
                            format!(
                                "{}: ServiceAccount subject `{name}` (subject {} of kind ServiceAccount) has `namespace:` without a value; a namespace name is expected",
                                referrer.describe(),
                                index + 1
                            ),
                        )
                        .with_help("give the subject's namespace, or remove `namespace:` (kustomize refuses it too)"));
                    }
                }
            }
        }
        Ok(Reach::Namespaces(namespaces))
    }

    fn reaches(&self, target: &Resource, scopes: &Scopes) -> bool {
        match self {
            Reach::Any => true,
            Reach::Namespaces(namespaces) => {
                !scopes.is_namespaced(target.api_version(), target.kind())
                    || same_namespace(&namespaces[0], target.namespace())
                    || namespaces[1..].iter().any(|ns| ns == target.namespace())
            }
        }
    }
}

struct Context<'a> {
    backref: &'a BackReference,
    resources: &'a [Resource],
    referrer: &'a Resource,
    reach: &'a Reach,
    scopes: &'a Scopes,
    path: &'a str,
}

impl Context<'_> {
    /// The objects the referrer can name.
    fn reachable(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().filter(|r| self.reach.reaches(r, self.scopes))
    }

    fn set(&self, field: &mut Value) -> Result<(), String> {
        match field {
            Value::String(_) => self.set_scalar(field),
            Value::Object(_) => self.set_mapping(field),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(_) => self.set_scalar(item)?,
                        Value::Object(_) => self.set_mapping(item)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn set_scalar(&self, field: &mut Value) -> Result<(), String> {
        let Some(old) = field.as_str() else { return Ok(()) };
        let candidates: Vec<&Resource> = self.reachable().collect();
        if let Some(referral) = self.select(old, candidates, false)? {
            *field = Value::String(referral.name().to_string());
        }
        Ok(())
    }

    /// A map with `name` (and perhaps `namespace`), such as a RoleBinding's subject.
    fn set_mapping(&self, field: &mut Value) -> Result<(), String> {
        let Some(map) = field.as_object_mut() else { return Ok(()) };
        let Some(old) = map.get("name").and_then(Value::as_str).map(str::to_string) else {
            return Err(format!("`{}` leads to a map without `name`", self.path));
        };
        let candidates: Vec<&Resource> = match map.get("namespace").and_then(Value::as_str) {
            None => self.reachable().collect(),
            Some(ns) => {
                let original = |r: &&Resource| same_namespace(r.original_id().2, ns);
                let by_original: Vec<&Resource> = self.reachable().filter(original).collect();
                if by_original.is_empty() {
                    self.reachable().filter(|r| same_namespace(r.namespace(), ns)).collect()
                } else {
                    by_original
                }
            }
        };
        let Some(referral) = self.select(&old, candidates, true)? else { return Ok(()) };
        if referral.name() == old && referral.namespace().is_empty() {
            return Ok(());
        }
        map.insert("name".into(), Value::String(referral.name().to_string()));
        if !referral.namespace().is_empty() {
            map.insert("namespace".into(), Value::String(referral.namespace().to_string()));
        }
        Ok(())
    }

    /// kustomize's `selectReferral`.
    fn select<'r>(
        &self,
        old: &str,
        candidates: Vec<&'r Resource>,
        with_namespace: bool,
    ) -> Result<Option<&'r Resource>, String> {
        let b = self.backref;
        let role_ref = self.path.ends_with("roleRef/name").then(|| {
            let text = |f: &str| self.referrer.object.pointer(&format!("/roleRef/{f}")).and_then(Value::as_str);
            (text("apiGroup"), text("kind"))
        });
        let referrer_scoped = !self.scopes.is_namespaced(self.referrer.api_version(), self.referrer.kind());
        let candidates: Vec<&Resource> = candidates
            .into_iter()
            .filter(|r| r.prev.iter().any(|id| id.name == old))
            .filter(|r| {
                r.prev.iter().any(|id| gvk_selects(&b.group, &b.version, &b.kind, r.group(), r.version(), &id.kind))
            })
            .filter(|r| match role_ref {
                Some((Some(group), Some(kind))) => {
                    r.prev.iter().any(|id| gvk_selects(group, "", kind, r.group(), r.version(), &id.kind))
                }
                _ => true,
            })
            .filter(|r| {
                referrer_scoped
                    || !self.scopes.is_namespaced(r.api_version(), r.kind())
                    || r.kind() == "ServiceAccount"
                    || same_namespace(self.referrer.namespace(), r.namespace())
            })
            .collect();
        if let [one] = candidates[..] {
            return Ok(Some(one));
        }
        // The copies of one base reached along different paths: the one whose prefixes and
        // suffixes end as the referrer's do (an object without any matches any, at first).
        let mut candidates: Vec<&Resource> =
            candidates.into_iter().filter(|r| affixes_end_alike(r, self.referrer, true)).collect();
        if candidates.len() > 1 {
            candidates.retain(|r| affixes_end_alike(r, self.referrer, false));
        }
        let Some(first) = candidates.first() else { return Ok(None) };
        let identical = candidates
            .iter()
            .all(|r| r.name() == first.name() && (!with_namespace || r.namespace() == first.namespace()));
        if identical {
            Ok(Some(first))
        } else {
            let ids: Vec<String> = candidates.iter().map(|r| r.describe()).collect();
            Err(format!("`{}` names `{old}`, which could be any of {}", self.path, ids.join(", ")))
        }
    }
}
