//! A release as rendered: what rendering hands to planning, applying and the cluster's
//! observation, so none of them depends on how it was rendered.

use serde_json::{Map, Value};
use weaver_core::manifest::Manifest;

use crate::IgnoreRule;
use crate::chart::ChartMeta;

/// One release's objects, in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRelease {
    pub name: String,
    pub namespace: String,
    pub chart: String,
    /// The chart's name and versions (none for a kustomization or a release not installed).
    pub chart_meta: Option<ChartMeta>,
    pub installed: bool,
    pub manifests: Vec<Manifest>,
    /// A Helm chart's lifecycle hooks (`helm.sh/hook`), apart from its objects: run around an
    /// apply, never kept as objects (see `hook`).
    pub hooks: Vec<Manifest>,
    /// What rendering found that does not stop it (a Helm chart's subchart of the wrong
    /// version), for the caller to warn of.
    pub warnings: Vec<String>,
    /// The release's `ignoreDifferences` rules (the environment's among them), which its plan
    /// follows.
    pub ignore_differences: Vec<IgnoreRule>,
    /// The release's `values:` as its environment files set them (no secrets), for its record.
    pub values: Map<String, Value>,
}

impl RenderedRelease {
    /// A release the environment no longer has: nothing rendered; what its record holds is
    /// deleted, not compared.
    pub fn removed(name: &str, namespace: &str) -> RenderedRelease {
        RenderedRelease {
            name: name.to_string(),
            namespace: namespace.to_string(),
            chart: String::new(),
            chart_meta: None,
            installed: false,
            manifests: Vec::new(),
            hooks: Vec::new(),
            warnings: Vec::new(),
            ignore_differences: Vec::new(),
            values: Default::default(),
        }
    }

    /// What `weaver render` prints of the release: its objects, then its hooks (as `helm
    /// template` prints them), each with whether it is a hook.
    pub fn documents(&self) -> impl Iterator<Item = (&Manifest, bool)> {
        self.manifests.iter().map(|m| (m, false)).chain(self.hooks.iter().map(|h| (h, true)))
    }

    pub fn documents_mut(&mut self) -> impl Iterator<Item = (&mut Manifest, bool)> {
        self.manifests.iter_mut().map(|m| (m, false)).chain(self.hooks.iter_mut().map(|h| (h, true)))
    }
}
