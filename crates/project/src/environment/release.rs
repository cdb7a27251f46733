//! A release as its file gives it, with what it inherits, checked and resolved: its chart
//! (local or remote, by repository), its patches and values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location, Result};

use super::file::{PatchFile, ReleaseFile, RepositoryFile};
use super::names::{RELEASE_NAME, located_namespace, path_ref, substitute_variable};
use super::{LoadRestrictions, Patch, PatchBody, Release, health_checks, ignore_rules, location};
use crate::chart::{CHARTS_DIR, ChartKeys, RemoteChart, is_archive, is_local, is_path};
use crate::health::HealthCheck;
use crate::ignore::IgnoreRule;
use crate::image_updates::ImageUpdate;
use crate::promotion::{Pinned, Promoted, Promotion, promoted_path};
use crate::source::{PathRef, inside_repository, is_plain_name, lexical};
use crate::values::merge_overrides;

/// A release while `extends` is being resolved: one file's fields, already located.
#[derive(Debug, Clone)]
pub(super) struct PartialRelease {
    pub(super) name: String,
    pub(super) at: Location,
    /// `chart` or `kustomize` (true), whichever the most derived file sets.
    pub(super) chart: Option<(String, Location, bool)>,
    /// `version`: a remote chart's version constraint.
    pub(super) version: Option<(String, Location)>,
    pub(super) namespace: Option<String>,
    pub(super) create_namespace: Option<bool>,
    /// Each with where it is written (a base file, maybe), for an unknown name's error.
    pub(super) needs: Option<Vec<(String, Location)>>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) values: Option<Map<String, Value>>,
    pub(super) values_files: Option<Vec<PathRef>>,
    pub(super) secrets: Option<Vec<PathRef>>,
    pub(super) substitute: Option<BTreeMap<String, String>>,
    pub(super) substitute_from: Option<Vec<PathRef>>,
    /// Where `substitute` or `substituteFrom` was last written: a chart release refuses them.
    pub(super) substitute_at: Option<Location>,
    pub(super) load_restrictions: Option<(LoadRestrictions, Location)>,
    pub(super) installed: Option<bool>,
    pub(super) patches: Option<Vec<Patch>>,
    pub(super) ignore_differences: Option<Vec<IgnoreRule>>,
    pub(super) health_checks: Option<Vec<HealthCheck>>,
}

impl PartialRelease {
    pub(super) fn parse(file: &Path, spanned: Spanned<ReleaseFile>) -> Result<Self> {
        let at = location(file, &spanned.referenced);
        let fields = spanned.value;
        let patches = match fields.patches {
            None => None,
            Some(list) => Some(list.into_iter().map(|p| parse_patch(file, p)).collect::<Result<Vec<_>>>()?),
        };
        let namespace = fields.namespace.map(|ns| located_namespace(file, ns)).transpose()?;
        let ignore_differences = fields.ignore_differences.map(|rules| ignore_rules(file, rules)).transpose()?;
        let health_checks = fields.health_checks.map(|rules| health_checks(file, rules)).transpose()?;
        let mut substitute_at = None;
        let substitute = match fields.substitute {
            None => None,
            Some(variables) => {
                let mut strings = BTreeMap::new();
                for (name, value) in variables {
                    let at = location(file, &value.referenced);
                    substitute_at.get_or_insert_with(|| at.clone());
                    strings.insert(name.clone(), substitute_variable(&fields.name, name, &value.value, at)?);
                }
                Some(strings)
            }
        };
        let substitute_from: Option<Vec<PathRef>> =
            fields.substitute_from.map(|v| v.into_iter().map(|s| path_ref(file, s)).collect());
        if let Some(first) = substitute_from.as_ref().and_then(|files| files.first()) {
            substitute_at.get_or_insert_with(|| first.at.clone());
        }
        let load_restrictions = match fields.load_restrictions {
            None => None,
            Some(spanned) => {
                let at = location(file, &spanned.referenced);
                let restrictions = match spanned.value.as_str() {
                    "rootOnly" => LoadRestrictions::RootOnly,
                    "none" => LoadRestrictions::None,
                    other => {
                        return Err(Error::at(at, format!("`loadRestrictions: {other}` is not a load restriction"))
                            .with_help("write `rootOnly` (kustomize's default) or `none` (files anywhere in the repository, as Flux builds)"));
                    }
                };
                Some((restrictions, at))
            }
        };
        let chart = match (fields.chart, fields.kustomize) {
            (Some(_), Some(k)) => {
                return Err(Error::at(
                    location(file, &k.referenced),
                    format!("release `{}` has both `chart` and `kustomize`", fields.name),
                )
                .with_help("a release is either a chart or a kustomization: keep one"));
            }
            (Some(c), None) => Some((c.value, location(file, &c.referenced), false)),
            (None, Some(k)) => Some((k.value, location(file, &k.referenced), true)),
            (None, None) => None,
        };
        Ok(PartialRelease {
            name: fields.name,
            chart,
            version: fields.version.map(|v| (v.value, location(file, &v.referenced))),
            namespace,
            create_namespace: fields.create_namespace,
            needs: fields.needs.map(|n| n.into_iter().map(|s| (s.value, location(file, &s.referenced))).collect()),
            labels: fields.labels,
            values: fields.values,
            values_files: fields.values_files.map(|v| v.into_iter().map(|s| path_ref(file, s)).collect()),
            secrets: fields.secrets.map(|v| v.into_iter().map(|s| path_ref(file, s)).collect()),
            substitute,
            substitute_from,
            substitute_at,
            load_restrictions,
            installed: fields.installed,
            patches,
            ignore_differences,
            health_checks,
            at,
        })
    }

    /// Applies a more derived file's fields for the same release.
    pub(super) fn merge(&mut self, child: PartialRelease) {
        self.chart = child.chart.or(self.chart.take());
        self.version = child.version.or(self.version.take());
        self.namespace = child.namespace.or(self.namespace.take());
        self.create_namespace = child.create_namespace.or(self.create_namespace);
        self.needs = child.needs.or(self.needs.take());
        if let Some(labels) = child.labels {
            self.labels.get_or_insert_with(BTreeMap::new).extend(labels);
        }
        if let Some(values) = child.values {
            // Nulls must survive to delete chart defaults and valuesFiles keys at render time.
            merge_overrides(self.values.get_or_insert_with(Map::new), values);
        }
        self.values_files = child.values_files.or(self.values_files.take());
        self.secrets = child.secrets.or(self.secrets.take());
        if let Some(variables) = child.substitute {
            self.substitute.get_or_insert_with(BTreeMap::new).extend(variables);
        }
        self.substitute_from = child.substitute_from.or(self.substitute_from.take());
        self.substitute_at = child.substitute_at.or(self.substitute_at.take());
        self.load_restrictions = child.load_restrictions.or(self.load_restrictions.take());
        self.installed = child.installed.or(self.installed);
        self.patches = child.patches.or(self.patches.take());
        self.ignore_differences = child.ignore_differences.or(self.ignore_differences.take());
        self.health_checks = child.health_checks.or(self.health_checks.take());
        self.at = child.at;
    }

    pub(super) fn finish(
        self,
        default_namespace: &str,
        repositories: &BTreeMap<String, Repository>,
        environment_rules: &[IgnoreRule],
        environment_checks: &[HealthCheck],
    ) -> Result<Release> {
        RELEASE_NAME.check(&self.name, &self.at)?;
        let Some((chart, chart_at, is_kustomization)) = self.chart else {
            return Err(Error::at(self.at, format!("release `{}` has no `chart`", self.name)).with_help(
                "add `chart: <name>` naming a directory under charts/, or `kustomize: <dir>` naming a kustomization",
            ));
        };
        let remote = match is_kustomization {
            true => None,
            false => remote_chart(&chart, &chart_at, self.version.as_ref(), repositories)?,
        };
        if !is_kustomization && remote.is_none() {
            local_chart(&chart, &chart_at)?;
        }
        if let (false, Some(at)) = (is_kustomization, &self.substitute_at) {
            let field =
                if self.substitute.as_ref().is_some_and(|s| !s.is_empty()) { "substitute" } else { "substituteFrom" };
            return Err(Error::at(at.clone(), format!("release `{}`: `{field}` is for kustomizations", self.name))
                .with_help("variables are substituted in the objects of a `kustomize:` release, as Flux's postBuild does; a chart takes `values`"));
        }
        if let (false, Some((_, at))) = (is_kustomization, &self.load_restrictions) {
            return Err(Error::at(
                at.clone(),
                format!("release `{}`: `loadRestrictions` is for kustomizations", self.name),
            )
            .with_help("it says where the files a `kustomize:` release's kustomization reads may be"));
        }
        if let (true, Some(first)) = (is_kustomization, self.secrets.as_ref().and_then(|files| files.first())) {
            return Err(Error::at(first.at.clone(), format!("release `{}`: `secrets` is for chart releases", self.name))
                .with_help("a kustomization's variables come from SOPS files in `substituteFrom`; a kustomization can generate Secrets itself"));
        }
        if let (None, Some((_, at))) = (&remote, &self.version) {
            return Err(Error::at(at.clone(), format!("release `{}`: `version` is for remote charts", self.name))
                .with_help("a chart of the repository is the version it holds; name a remote chart as `<repository>/<chart>` or `oci://…`"));
        }
        let chart = match (&remote, &self.version) {
            (Some(_), Some((version, _))) => format!("{chart}@{version}"),
            _ => chart,
        };
        Ok(Release {
            remote,
            namespace: self.namespace.unwrap_or_else(|| default_namespace.to_string()),
            create_namespace: self.create_namespace.unwrap_or(true),
            needs: self.needs.unwrap_or_default().into_iter().map(|(name, _)| name).collect(),
            labels: self.labels.unwrap_or_default(),
            values: self.values.unwrap_or_default(),
            values_files: self.values_files.unwrap_or_default(),
            secrets: self.secrets.unwrap_or_default(),
            substitute: self.substitute.unwrap_or_default(),
            substitute_from: self.substitute_from.unwrap_or_default(),
            load_restrictions: self.load_restrictions.map(|(r, _)| r).unwrap_or_default(),
            installed: self.installed.unwrap_or(true),
            patches: self.patches.unwrap_or_default(),
            ignore_differences: environment_rules
                .iter()
                .cloned()
                .chain(self.ignore_differences.unwrap_or_default())
                .collect(),
            health_checks: self
                .health_checks
                .unwrap_or_default()
                .into_iter()
                .chain(environment_checks.iter().cloned())
                .collect(),
            images: BTreeMap::new(),
            name: self.name,
            kustomize: is_kustomization.then(|| PathBuf::from(&chart)),
            generated_resources: Vec::new(),
            chart,
            chart_at,
            at: self.at,
        })
    }
}

/// A chart repository of `repositories:`, checked; a derived file's entry replaces its base's
/// of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    /// Without a trailing `/`.
    pub url: String,
    pub plain_http: bool,
    /// `verify: true`: the keys its charts' signatures are checked against, by path from the
    /// repository's root: its `keyring` (OpenPGP, provenance files) or, for an `oci://`
    /// registry, its `publicKeyRef` (cosign).
    pub keys: Option<ChartKeys>,
}

impl Repository {
    pub(super) fn parse(file: &Path, spanned: Spanned<RepositoryFile>) -> Result<Repository> {
        let fields = spanned.value;
        let at = location(file, &fields.url.referenced);
        if !is_plain_name(&fields.name) {
            return Err(Error::at(
                location(file, &spanned.referenced),
                format!("`{}` is not a repository name", fields.name),
            )
            .with_help("name it with letters, digits, '-', '_' or '.': releases write `chart: <repository>/<chart>`"));
        }
        let url = fields.url.value.trim_end_matches('/').to_string();
        let scheme = ["https://", "http://", "oci://"].into_iter().find(|s| url.starts_with(s));
        if scheme.is_none_or(|s| url.len() == s.len()) || url.contains(['?', '#', '@']) {
            return Err(Error::at(at, format!("repository `{}`: `{url}` is not a chart repository URL", fields.name))
                .with_help("write https://host/path (a repository with index.yaml) or oci://host/path (a registry), without credentials"));
        }
        let plain_http = fields.plain_http.unwrap_or(false);
        if plain_http && !url.starts_with("oci://") {
            return Err(Error::at(at, format!("repository `{}`: `plainHttp` is for oci:// registries", fields.name))
                .with_help("a chart repository says http:// or https:// in its URL"));
        }
        let oci = url.starts_with("oci://");
        let name = &fields.name;
        let path_of = |field: &str, written: Spanned<String>| {
            inside_repository(&written.value).ok_or_else(|| {
                Error::at(
                    location(file, &written.referenced),
                    format!("repository `{name}`: {field} `{}` is not a path inside the repository", written.value),
                )
                .with_help(format!("name it by its path from the repository's root: `{field}: keys/…`"))
            })
        };
        let keys = match (fields.verify.unwrap_or(false), fields.keyring, fields.public_key_ref) {
            (false, None, None) => None,
            (false, keyring, key) => {
                let (field, at) = match (keyring, key) {
                    (Some(keyring), _) => ("keyring", keyring.referenced),
                    (None, Some(key)) => ("publicKeyRef", key.referenced),
                    (None, None) => unreachable!("matched above"),
                };
                return Err(Error::at(
                    location(file, &at),
                    format!("repository `{name}`: a `{field}` without `verify: true` checks nothing"),
                )
                .with_help("add `verify: true` to check each chart's signature against it"));
            }
            (true, Some(_), Some(key)) => {
                return Err(Error::at(
                    location(file, &key.referenced),
                    format!("repository `{name}`: `keyring` and `publicKeyRef` are two ways to check its charts: name one"),
                )
                .with_help("`keyring` checks helm's provenance files (`helm package --sign`), `publicKeyRef` cosign's signatures (`cosign sign --key`)"));
            }
            (true, _, Some(key)) if !oci => {
                return Err(Error::at(
                    location(file, &key.referenced),
                    format!("repository `{name}`: `publicKeyRef` (cosign) is for oci:// registries"),
                )
                .with_help(
                    "a chart repository's charts are checked by their provenance files: `keyring: keys/charts.gpg`",
                ));
            }
            (true, None, None) if oci => {
                return Err(Error::at(at, format!("repository `{name}`: `verify: true` needs a `publicKeyRef` or a `keyring`"))
                    .with_help("name the cosign public key its charts are signed with (`publicKeyRef: keys/cosign.pub`, from `cosign generate-key-pair`), or the OpenPGP keys of the provenance files `helm push` uploads with them (`keyring: keys/charts.gpg`), by path from the repository's root"));
            }
            (true, None, None) => {
                return Err(Error::at(at, format!("repository `{name}`: `verify: true` needs a `keyring`"))
                    .with_help("name the OpenPGP public keys charts are signed with, by path from the repository's root: `keyring: keys/charts.gpg` (`gpg --export KEY > keys/charts.gpg`)"));
            }
            (true, Some(keyring), None) => Some(ChartKeys::Keyring(path_of("keyring", keyring)?)),
            (true, None, Some(key)) => Some(ChartKeys::Cosign(path_of("publicKeyRef", key)?)),
        };
        Ok(Repository { name: fields.name, url, plain_http, keys })
    }
}

/// Checks that a chart of the repository is named as one: a directory of charts/ by its name,
/// or a chart directory or packaged chart by its path from the repository's root, inside it.
pub(super) fn local_chart(chart: &str, at: &Location) -> Result<()> {
    if !is_local(chart) {
        return Err(Error::at(at.clone(), format!("`chart: {chart}` is not a chart name")).with_help(
            "name a directory of charts/ by its name (`chart: web`), or a chart directory by its path from the repository's root (`chart: ./deploy/web`)",
        ));
    }
    if (is_path(chart) || is_archive(chart)) && lexical(Path::new(chart)).is_none_or(|p| p.as_os_str().is_empty()) {
        return Err(Error::at(at.clone(), format!("`chart: {chart}` leads outside the repository"))
            .with_help("name a chart by its path from the repository's root, below it (`chart: ./deploy/web`)"));
    }
    Ok(())
}

/// The remote chart `chart` names, if it names one: `<repository>/<chart>` of `repositories`,
/// or `oci://host/path/chart`; `@sha256:…` after an OCI chart pins its manifest instead of
/// `version`, its constraint.
pub(super) fn remote_chart(
    chart: &str,
    at: &Location,
    version: Option<&(String, Location)>,
    repositories: &BTreeMap<String, Repository>,
) -> Result<Option<RemoteChart>> {
    let bad = |message: String, help: &str| Err(Error::at(at.clone(), message).with_help(help.to_string()));
    if is_archive(chart) {
        return Ok(None);
    }
    let (reference, digest) = match chart.split_once('@') {
        Some((reference, digest)) => (reference, Some(digest)),
        None => (chart, None),
    };
    let (repository, name, plain_http, repository_name, keys) = if let Some(path) = reference.strip_prefix("oci://") {
        let Some((registry_path, name)) = path.rsplit_once('/').filter(|(r, n)| !r.is_empty() && is_plain_name(n))
        else {
            return bad(format!("`chart: {chart}` is not an OCI chart reference"), "write oci://host/path/chart");
        };
        (format!("oci://{registry_path}"), name, false, None, None)
    } else if let Some((repository, name)) = reference.split_once('/')
        && is_plain_name(repository)
    {
        let Some(found) = repositories.get(repository) else {
            let known: Vec<&str> = repositories.keys().map(String::as_str).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            let help = match repository {
                CHARTS_DIR => format!(
                    "a chart of this repository's {CHARTS_DIR}/ directory is named by its directory alone: `chart: {name}`"
                ),
                _ => format!(
                    "repositories of this environment: {known}; a chart of this repository's {CHARTS_DIR}/ directory is named by its directory alone (`chart: <name>`), one elsewhere by its path (`chart: ./{chart}`)"
                ),
            };
            return bad(format!("`chart: {chart}`: no repository `{repository}` in `repositories`"), &help);
        };
        if !is_plain_name(name) {
            return bad(format!("`chart: {chart}`: `{name}` is not a chart name"), "write <repository>/<chart>");
        }
        (found.url.clone(), name, found.plain_http, Some(found.name.clone()), found.keys.clone())
    } else {
        return Ok(None);
    };
    let version = match (digest, version) {
        (Some(_), Some(_)) => {
            return bad(
                format!("`chart: {chart}` has both a digest and a `version`"),
                "keep one: the digest pins the chart exactly",
            );
        }
        (Some(digest), None) => {
            if !crate::chart::is_sha256_digest(digest) || !repository.starts_with("oci://") {
                return bad(
                    format!("`chart: {chart}`: `@{digest}` is not an OCI manifest digest"),
                    "pin a chart of an OCI registry as <chart>@sha256:<64 hex digits>, or give a `version`",
                );
            }
            digest.to_string()
        }
        (None, Some((constraint, version_at))) => {
            let any = weaver_semver::Version::parse("0.0.0").expect("0.0.0 is a version");
            if let Err(reason) = weaver_semver::satisfies(constraint, &any) {
                return Err(Error::at(
                    version_at.clone(),
                    format!("`version: {constraint}` is not a version constraint: {reason}"),
                )
                .with_help("write a version (1.2.3) or a range as helm takes it (~1.2.0, ^1, >=1.2 <2)"));
            }
            constraint.trim().to_string()
        }
        (None, None) => String::new(),
    };
    Ok(Some(RemoteChart { repository, repository_name, name: name.to_string(), version, plain_http, keys }))
}

pub(super) fn parse_patch(file: &Path, spanned: Spanned<PatchFile>) -> Result<Patch> {
    let at = location(file, &spanned.referenced);
    let body = match (spanned.value.patch, spanned.value.ops) {
        (Some(patch), None) => PatchBody::Strategic(patch),
        (None, Some(ops)) => PatchBody::Json6902(Value::Array(ops)),
        _ => {
            return Err(Error::at(at, "a patch needs exactly one of `patch` (strategic merge) or `ops` (RFC 6902)"));
        }
    };
    Ok(Patch { target: spanned.value.target, body, at })
}

/// Lays what was promoted over `releases`, refusing pins of releases the environment lacks.
pub(super) fn lay_promotion(promotion: &Promotion, environment: &str, releases: &mut [Release]) -> Result<()> {
    for pin in &promotion.pins {
        let Some(release) = releases.iter().find(|r| r.name == pin.release) else {
            return Err(Error::at(
                pin.at.clone(),
                format!("a pin names release `{}`, which is not one of this environment", pin.release),
            ));
        };
        if pin.what == Pinned::Chart && release.remote.is_none() {
            return Err(Error::at(
                pin.at.clone(),
                format!("release `{}`: a chart pin is for a remote chart", release.name),
            )
            .with_help(
                "a chart of the repository is the version it holds; pin the release's values or images instead",
            ));
        }
    }
    lay_promoted(&promotion.promoted, environment, releases)
}

/// Lays the tags `weaver images update` chose over `releases`, refusing subscriptions of
/// releases the environment lacks.
pub(super) fn lay_image_updates(
    updates: &[ImageUpdate],
    written: &Promoted,
    environment: &str,
    releases: &mut [Release],
) -> Result<()> {
    for update in updates {
        if let Some(missing) = update.releases.iter().find(|name| !releases.iter().any(|r| &r.name == *name)) {
            return Err(Error::at(
                update.at.clone(),
                format!("image `{}` names release `{missing}`, which is not one of this environment", update.image),
            ));
        }
    }
    lay_promoted(written, environment, releases)
}

/// The promotions file's pins over `releases`.
fn lay_promoted(promoted: &Promoted, environment: &str, releases: &mut [Release]) -> Result<()> {
    let file = promoted_path(environment);
    for (name, promoted) in &promoted.releases {
        let Some(release) = releases.iter_mut().find(|r| &r.name == name) else {
            return Err(Error::at(
                Location::file(&file),
                format!("release `{name}` is not one of environment `{environment}`"),
            )
            .with_help("run weaver promote again: it rewrites the file for the environment's releases"));
        };
        merge_overrides(&mut release.values, promoted.values.clone());
        release.images.extend(promoted.images.clone());
        if let (Some(version), Some(remote)) = (&promoted.version, release.remote.as_mut()) {
            let written = release.chart.rsplit_once('@').map_or(release.chart.as_str(), |(chart, _)| chart);
            release.chart = format!("{written}@{version}");
            remote.version = version.clone();
        }
    }
    Ok(())
}
