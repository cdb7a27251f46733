//! Offline schema validation of rendered objects, before anything talks to a cluster: each
//! object against its schema (`weaver-kube-schema`: built-in kinds against k8s-openapi's
//! Kubernetes 1.37 schemas, custom resources against the CRDs rendered in the same run and
//! those in `crds/` of every chart the environment deploys, selected or not), and API versions
//! the target Kubernetes version no longer serves.
//!
//! k8s-openapi 0.29 covers Kubernetes 1.33 to 1.37 only. A 1.32 cluster (the default target) is
//! served by the 1.37 schema, a superset for the kinds 1.32 serves: a field added after 1.32 is
//! accepted here and refused (or dropped) by a 1.32 server, never the other way round. Kinds
//! 1.32 served and 1.37 no longer defines are not validated (and warned about when removed).
//! A custom resource of a kind no schema describes is *not validated*, and reported as such.

mod deprecated;

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use std::path::PathBuf;

use weaver_core::manifest::{Manifest, ObjectKey};
pub use weaver_kube_schema::Issue;
use weaver_kube_schema::{Builtins, Id, Schemas};

/// What to do with what validation finds (`--validate`, as kubectl's flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Problems are errors.
    #[default]
    Strict,
    /// Problems are warnings.
    Warn,
    /// No validation.
    Ignore,
}

/// An object with problems, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub release: String,
    /// The template (the object's `# Source:`).
    pub source: PathBuf,
    pub object: ObjectKey,
    /// The patches that changed the object, where each is written.
    pub patched_by: Vec<weaver_core::error::Location>,
    pub issue: Issue,
}

/// An object of an API version that some Kubernetes version stopped serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub release: String,
    pub source: PathBuf,
    pub object: ObjectKey,
    pub api_version: String,
    /// The minor version of Kubernetes 1 that stopped serving it.
    pub removed_in: u32,
    /// What to use instead, when there is something.
    pub replacement: Option<&'static str>,
}

/// What validating a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Objects no schema describes (apiVersion/kind), which were not validated.
    pub not_validated: Vec<(String, ObjectKey)>,
    pub validated: usize,
}

impl Report {
    /// Adds what another part of the run found.
    pub fn append(&mut self, part: Report) {
        self.problems.extend(part.problems);
        self.not_validated.extend(part.not_validated);
        self.validated += part.validated;
    }
}

/// Validates every object against its schema (in parallel: the walk is the larger part of the
/// cost once the schemas are built). Custom resources get the schemas of the CRDs among
/// `manifests` and of `crds` (those of releases not selected).
pub fn validate(manifests: &[&Manifest], crds: &[Value]) -> Report {
    /// Objects checked in turn by one of rayon's threads: a few milliseconds of work.
    const PART: usize = 32;
    let kinds = manifests.iter().map(|m| (m.api_version(), m.kind())).collect();
    let mut validator = Validator::new(crds.iter(), Some(&kinds));
    validator.learn(manifests.iter().enumerate().map(|(index, m)| ((0, index), *m)), Part::Last);
    let parts = weaver_core::parallel::map_each(manifests.chunks(PART).collect(), |part| validator.check(part));
    let mut report = Report::default();
    parts.into_iter().for_each(|part| report.append(part));
    report
}

/// Where a CRD comes in a run: the order of the objects as rendered. The last CRD of a kind
/// gives its schema, and one in `crds/` of a chart wins over every rendered one.
pub type Place = (usize, usize);

/// Whether more parts of a run may follow the one learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Objects of any kind may follow: every CRD is compiled.
    More,
    /// The run's last part: only the CRDs of its objects' kinds are compiled. The objects of
    /// earlier parts were checked already, and a chart's CRDs can hold thousands of schemas
    /// that no object of the run uses.
    Last,
}

/// The (apiVersion, kind) of objects.
pub type Kinds<'a> = HashSet<(&'a str, &'a str)>;

/// Validation of a run's objects a part at a time, as they are rendered: each part is learnt
/// (its CRDs), then checked. Built-in kinds are checked against [`Builtins::get`], whose
/// definitions are compiled as objects reach them.
pub struct Validator {
    /// Every (apiVersion, kind) learnt, built in or not.
    learnt: HashSet<(String, String)>,
    crds: Schemas,
    /// The custom kinds' schemas, by (apiVersion, kind), and where their CRD came.
    custom: HashMap<(String, String), (Place, Id)>,
    /// Kinds some object was checked as a custom resource, or not checked for want of a
    /// schema: a CRD of one of them learnt afterwards makes those answers wrong.
    checked_custom: HashSet<(String, String)>,
    stale: bool,
}

impl Validator {
    /// A validator knowing the CRDs in `crds/` of every chart the run's environment deploys;
    /// only those of `used` kinds when the run's objects are all known (it is one part).
    pub fn new<'a>(chart_crds: impl Iterator<Item = &'a Value>, used: Option<&Kinds>) -> Validator {
        let mut validator = Validator {
            learnt: HashSet::new(),
            crds: Schemas::default(),
            custom: HashMap::new(),
            checked_custom: HashSet::new(),
            stale: false,
        };
        validator.learn_crds(chart_crds.enumerate().map(|(index, crd)| ((usize::MAX, index), crd)), used);
        validator
    }

    /// Learns the CRDs among `manifests` (each with its place in the run) and their kinds,
    /// before they are checked.
    pub fn learn<'a>(&mut self, manifests: impl Iterator<Item = (Place, &'a Manifest)>, part: Part) {
        let manifests: Vec<(Place, &Manifest)> = manifests.collect();
        // The part's kinds first (no copies), then those not learnt (a copy of each kind only).
        let mut new: Kinds = manifests.iter().map(|(_, m)| (m.api_version(), m.kind())).collect();
        let used = (part == Part::Last).then_some(&new);
        self.learn_crds(manifests.iter().map(|(place, m)| (*place, &m.object)), used);
        new.retain(|&(api_version, kind)| !self.learnt.contains(&(api_version.to_string(), kind.to_string())));
        for (api_version, kind) in new {
            let key = (api_version.to_string(), kind.to_string());
            if self.builtin(api_version, kind).is_none() {
                self.checked_custom.insert(key.clone());
            }
            self.learnt.insert(key);
        }
    }

    /// Whether a CRD learnt after some objects were checked gives their kind another schema:
    /// only checking every object again gives the right answer then.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Checks `manifests`, whose kinds and CRDs were learnt.
    pub fn check(&self, manifests: &[&Manifest]) -> Report {
        let checked: Vec<Option<Vec<Issue>>> = manifests
            .iter()
            .map(|manifest| {
                let (api_version, kind) = (manifest.api_version(), manifest.kind());
                let echo = kind != "Secret";
                let builtins = Builtins::get();
                if let Some(id) = self.builtin(api_version, kind) {
                    Some(weaver_kube_schema::check(builtins, &builtins.schemas, id, &manifest.object, false, echo))
                } else {
                    let (_, id) = self.custom.get(&(api_version.to_string(), kind.to_string()))?;
                    Some(weaver_kube_schema::check(builtins, &self.crds, *id, &manifest.object, true, echo))
                }
            })
            .collect();
        let mut report = Report::default();
        for (manifest, issues) in manifests.iter().zip(checked) {
            let Some(issues) = issues else {
                report.not_validated.push((manifest.release.clone(), manifest.key()));
                continue;
            };
            report.validated += 1;
            report.problems.extend(issues.into_iter().map(|issue| Problem {
                release: manifest.release.clone(),
                source: manifest.source.clone(),
                object: manifest.key(),
                patched_by: manifest.patched_by.clone(),
                issue,
            }));
        }
        report
    }

    fn builtin(&self, api_version: &str, kind: &str) -> Option<Id> {
        Builtins::get().kinds.get(&(api_version, kind)).copied()
    }

    /// The schema of every version of the CRDs among `objects`, or only of `used` kinds.
    fn learn_crds<'a>(&mut self, objects: impl Iterator<Item = (Place, &'a Value)>, used: Option<&Kinds>) {
        for (place, object) in objects {
            if object["apiVersion"] != "apiextensions.k8s.io/v1" || object["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let spec = &object["spec"];
            let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str()) else {
                continue;
            };
            for version in spec["versions"].as_array().into_iter().flatten() {
                let (Some(name), Some(schema)) = (version["name"].as_str(), version["schema"].get("openAPIV3Schema"))
                else {
                    continue;
                };
                let key = (format!("{group}/{name}"), kind.to_string());
                if self.custom.get(&key).is_some_and(|(known, _)| *known > place) {
                    continue;
                }
                self.stale |= self.checked_custom.contains(&key);
                if used.is_some_and(|used| !used.contains(&(key.0.as_str(), kind))) {
                    continue;
                }
                let id = self.crds.compile_crd(schema);
                self.custom.insert(key, (place, id));
            }
        }
    }
}

/// The objects of an API version Kubernetes stopped serving, in any version (the caller
/// compares `removed_in` with its target).
pub fn removed(manifests: &[&Manifest]) -> Vec<Removed> {
    manifests
        .iter()
        .filter_map(|manifest| {
            let (removed_in, replacement) = deprecated::removed(manifest.api_version(), manifest.kind())?;
            Some(Removed {
                release: manifest.release.clone(),
                source: manifest.source.clone(),
                object: manifest.key(),
                api_version: manifest.api_version().to_string(),
                removed_in,
                replacement,
            })
        })
        .collect()
}

/// The minor version of a Kubernetes version (`v1.32.0` → 32), as the environment's
/// `kubeVersion` or a server's `gitVersion` gives it.
pub fn minor_version(version: &str) -> Option<u32> {
    let rest = version.strip_prefix('v').unwrap_or(version).strip_prefix("1.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Manifest {
        Manifest { release: "r".into(), object: value, ..Manifest::default() }
    }

    /// A CRD of kind `Widget` whose `size` is an integer.
    fn widget_crd() -> Value {
        serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
                     "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema":
                        {"type": "object", "properties": {"size": {"type": "integer"}}}}}]}})
    }

    /// A chart's CRD is compiled for a later part when more may come, and not at all when the
    /// run's only part has no object of its kind.
    #[test]
    fn crds_are_compiled_for_later_parts_or_for_the_kinds_of_the_last() {
        let config_map =
            object(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        let widget = object(serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
                                               "metadata": {"name": "w"}, "size": "large"}));
        let crd = widget_crd();

        let mut validator = Validator::new([&crd].into_iter(), None);
        validator.learn([((0, 0), &config_map)].into_iter(), Part::More);
        validator.learn([((1, 0), &widget)].into_iter(), Part::Last);
        let report = validator.check(&[&widget]);
        assert_eq!((report.validated, report.problems.len()), (1, 1), "{report:?}");
        assert_eq!(report.problems[0].issue.path, "size");

        let kinds = [("v1", "ConfigMap")].into_iter().collect();
        let mut alone = Validator::new([&crd].into_iter(), Some(&kinds));
        alone.learn([((0, 0), &config_map)].into_iter(), Part::Last);
        assert!(alone.custom.is_empty(), "a CRD no object uses is not compiled");
        assert_eq!(alone.check(&[&config_map]).validated, 1);

        let report = validate(&[&config_map, &widget], &[crd]);
        assert_eq!((report.validated, report.problems.len()), (2, 1), "{report:?}");
    }

    #[test]
    fn minor_versions() {
        assert_eq!(minor_version("v1.32.0"), Some(32));
        assert_eq!(minor_version("1.25"), Some(25));
        assert_eq!(minor_version("v1.30.2-eks-1"), Some(30));
        assert_eq!(minor_version("v2.0.0"), None);
    }
}
