//! The names and values an environment file gives: Kubernetes and API versions, variables,
//! release and namespace names, checked where they are written.

use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location, Result};

use super::location;
use crate::source::PathRef;
use crate::{VARIABLE_NAME_HELP, is_variable_name};

/// `kubeVersion` is a Kubernetes version as helm's `--kube-version` takes it.
pub(super) fn check_kube_version(version: &str, at: &Location) -> Result<()> {
    if weaver_core::manifest::is_kube_version(version) {
        return Ok(());
    }
    Err(Error::at(at.clone(), format!("`kubeVersion: {version}` is not a Kubernetes version"))
        .with_help("write it as helm's --kube-version takes it, such as v1.32.0"))
}

/// An `apiVersions` entry is an API version as helm's `--api-versions` takes it.
pub(super) fn check_api_version(entry: String, at: &Location) -> Result<String> {
    if weaver_core::manifest::is_api_version(&entry) {
        return Ok(entry);
    }
    Err(Error::at(at.clone(), format!("`apiVersions` entry `{entry}` is not an API version")).with_help(
        "write it as helm's --api-versions takes it: group/version (gateway.networking.k8s.io/v1) or \
         group/version/Kind (monitoring.coreos.com/v1/ServiceMonitor); v1 or v1/Pod for the core group",
    ))
}

/// A `substitute:` variable's value as the string substituted for it, once its name is checked.
pub(super) fn substitute_variable(release: &str, name: String, value: &Value, at: Location) -> Result<String> {
    if !is_variable_name(&name) {
        return Err(Error::at(at, format!("release `{release}`: `{name}` is not a variable name"))
            .with_help(VARIABLE_NAME_HELP));
    }
    variable_value(value).ok_or_else(|| {
        Error::at(at, format!("release `{release}`: variable `{name}` is not a string, number or boolean"))
            .with_help("write each variable as `name: value`; quote a value to keep its text as written")
    })
}

/// A variable's value as Flux substitutes it (its `substitute` is a map of strings): a string as
/// it is, a number or boolean as YAML wrote it, and line breaks removed, as Flux removes them.
/// `None` for anything else (null, a list, a mapping).
pub fn variable_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    Some(text.replace('\n', ""))
}

pub(super) fn path_ref(file: &Path, spanned: Spanned<String>) -> PathRef {
    PathRef { path: PathBuf::from(&spanned.value), at: location(file, &spanned.referenced) }
}

/// A name that must be an RFC 1123 label: one check, with each kind's length and wording.
pub(super) struct LabelRule {
    pub(super) what: &'static str,
    pub(super) max: usize,
    pub(super) rule: &'static str,
}

/// Release names become parts of object names (`weaver.<release>.v<N>`) and label values.
pub(super) const RELEASE_NAME: LabelRule = LabelRule {
    what: "release",
    max: 53,
    rule: "at most 53 lowercase letters, digits and '-', starting and ending with a letter or digit",
};

/// Whether `name` is a valid release name (what an import checks before writing one).
pub fn is_release_name(name: &str) -> bool {
    name.len() <= RELEASE_NAME.max && weaver_core::manifest::is_dns1123_label(name)
}

pub(super) const NAMESPACE_NAME: LabelRule =
    LabelRule { what: "namespace", max: 63, rule: weaver_core::manifest::DNS1123_LABEL };

impl LabelRule {
    pub(super) fn check(&self, name: &str, at: &Location) -> Result<()> {
        if name.len() <= self.max && weaver_core::manifest::is_dns1123_label(name) {
            Ok(())
        } else {
            Err(Error::at(at.clone(), format!("invalid {} name `{name}`", self.what))
                .with_help(format!("use {}", self.rule)))
        }
    }
}

/// A `namespace:` field's value, once validated.
pub(super) fn located_namespace(file: &Path, spanned: Spanned<String>) -> Result<String> {
    NAMESPACE_NAME.check(&spanned.value, &location(file, &spanned.referenced))?;
    Ok(spanned.value)
}
