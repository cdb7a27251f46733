//! `weaver install` and `weaver uninstall`: the in-cluster half (the chart `charts/weaver`, built
//! into the binary, so a binary installs the chart and image of its own version) applied by
//! weaver's own apply, as release [`RELEASE`] of an environment [`ENVIRONMENT`] held in memory.
//! It has what any release has: records and history, prune of what a newer chart dropped,
//! readiness with `--wait`, and its CRDs applied and Established before the objects that need
//! them. Uninstalling applies the same release `installed: false`: its record says what to
//! remove. The chart's CRDs are never pruned (they carry `weaver.example.com/prune: disabled`,
//! as Helm never deletes a chart's `crds/`), so the users' custom resources outlive the
//! controller, unless `--crds` deletes them: the custom resources first, while the controller
//! still runs to finalize them (a ConfigMapSync removes its copies), then the controller, then
//! the CRDs. A CRD kept whose conversion webhook was the removed controller's is set to convert
//! without one (`None`), once its Pods are gone: a webhook whose Service is gone would leave
//! the API server unable to serve the objects at any version but the one they are stored at.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tokio::time::Instant;

use serde_json::Value;

use super::apply::{Applied, ApplyActionOptions, Settings, apply};
use super::render::{Desired, IfEmpty, RenderOptions, Selection, render};
use super::{Context, Keys, OnProgress, Progress, PruneReleases};
use weaver_cluster::{Cluster, ConnectOptions, LockSubject, ManagedFields, ServedKind, served_kinds_of_crd};
use weaver_core::error::{Error, Result};
use weaver_core::limits::RenderLimits;
use weaver_core::manifest::{LABEL_ENVIRONMENT, LABEL_RELEASE, ListTarget};
use weaver_plan::release::record::Record;
use weaver_project::environment::DEFAULT_LOCK_NAMESPACE;
use weaver_project::{MemorySource, Project};
use weaver_render::overrides::OverrideFlags;

/// The environment the release is recorded in (its records' `environment`, its lock's name).
pub const ENVIRONMENT: &str = "weaver";
/// The release's name: its Deployment's, and the prefix of its other objects'.
pub const RELEASE: &str = "weaver";
/// Where it installs unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "weaver-system";
/// The source Secret in the controller's namespace, which `weaver bootstrap` writes and
/// its EnvironmentSync names; `weaver uninstall` keeps it.
pub const SOURCE_SECRET: &str = "weaver-git";
/// The Secret of the https server's CA (`--ca-file`), which `weaver bootstrap` writes and
/// its EnvironmentSync names; `weaver uninstall` keeps it.
pub const CA_SECRET: &str = "weaver-git-ca";
/// The chart's directory in the repository held in memory, and in one `weaver bootstrap` writes.
pub const CHART_DIR: &str = "charts/weaver";
/// The directory of the tenants' chart (`charts/environment-sync`), which `weaver bootstrap`
/// writes beside weaver's and `weaver tenant add` makes releases of.
pub const TENANT_CHART_DIR: &str = "charts/environment-sync";

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/charts.rs"));
}

/// The chart built into this binary: its files, by path relative to the chart's directory.
pub fn chart_files() -> &'static [(&'static str, &'static [u8])] {
    embedded::WEAVER
}

/// The tenants' chart built into this binary (the repository's `charts/environment-sync`): its
/// files, by path relative to [`TENANT_CHART_DIR`].
pub fn tenant_chart_files() -> &'static [(&'static str, &'static [u8])] {
    embedded::ENVIRONMENT_SYNC
}

/// What `weaver install` and `weaver uninstall` are told.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The namespace of the controller (created when missing).
    pub namespace: String,
    /// `--values`, `--set` and the like, over the chart's values; recorded in each revision.
    pub overrides: OverrideFlags,
    pub connect: ConnectOptions,
    pub settings: Settings,
}

/// The repository held in memory: the chart built in, and `environments/weaver.yaml` with the
/// one release, `installed` or not.
pub fn repository(namespace: &str, installed: bool) -> Project {
    let version = env!("CARGO_PKG_VERSION");
    let mut source = MemorySource::new(format!("the chart weaver {version} built into weaver"));
    for (path, bytes) in chart_files() {
        source.insert(Path::new(CHART_DIR).join(path), *bytes);
    }
    let environment = format!(
        "# `weaver install`: the chart built into weaver {version}.\n\
         namespace: {namespace}\n\
         releases:\n  - name: {RELEASE}\n    chart: weaver\n    installed: {installed}\n"
    );
    source.insert(format!("environments/{ENVIRONMENT}.yaml"), environment.into_bytes());
    Project::new(Arc::new(source))
}

/// `--namespace` as a namespace's name, checked before it is written into an environment's
/// YAML or sent.
pub fn check_namespace(namespace: &str) -> Result<()> {
    check_name("--namespace", namespace, "a namespace's name")
}

/// `value`, given as `what` (a flag, an argument), as `kind`: a name shaped as a namespace's
/// (a DNS label), checked before it is written into YAML or sent.
pub fn check_name(what: &str, value: &str, kind: &str) -> Result<()> {
    let shaped = value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !shaped || value.is_empty() || value.len() > 63 || value.starts_with('-') || value.ends_with('-') {
        return Err(Error::new(format!(
            "{what} {value:?} is not {kind}: expected at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        )));
    }
    Ok(())
}

fn render_options(options: &InstallOptions, installed: bool) -> Result<RenderOptions> {
    check_namespace(&options.namespace)?;
    Ok(RenderOptions {
        selection: Selection {
            env: ENVIRONMENT.to_string(),
            project: Some(repository(&options.namespace, installed)),
            ..Selection::default()
        },
        keys: Keys::Search(None),
        if_empty: IfEmpty::Refuse,
        validate: weaver_validate::Mode::Strict,
        overrides: options.overrides.clone(),
        charts: weaver_source::charts::Archives::Machine,
        limits: RenderLimits::default(),
    })
}

fn apply_options(options: &InstallOptions, installed: bool) -> Result<ApplyActionOptions> {
    Ok(ApplyActionOptions {
        render: render_options(options, installed)?,
        connect: options.connect.clone(),
        settings: options.settings.clone(),
        require_clean: false,
        prune_releases: PruneReleases::No,
        // The values flags are how the chart is configured here: there is no git to hold them.
        allow_overrides: true,
        forget_helm_release: false,
        servers: None,
    })
}

/// The objects an install would apply, rendered offline (`weaver install --dry-run`).
pub fn render_install(options: &InstallOptions, cx: Context<'_>) -> Result<Desired> {
    render(&render_options(options, true)?, cx)
}

/// Installs the chart built in, or upgrades the release to it. An install that runs weaver
/// from git (its last revision applied from a commit: `weaver bootstrap`) is refused: this
/// would undo its own EnvironmentSync and the values git holds.
pub async fn install(options: &InstallOptions, cx: Context<'_>) -> Result<Applied> {
    let apply_options = apply_options(options, true)?;
    let cluster = Cluster::connect(&options.connect).await?;
    if let Some(record) = last_record(&cluster, &options.namespace).await?
        && let Some(commit) = &record.commit
    {
        return Err(Error::new(format!(
            "weaver in namespace {} runs from git: its release was applied from commit {} (weaver bootstrap), and weaver install would undo that",
            options.namespace,
            &commit[..commit.len().min(12)]
        ))
        .with_help("change weaver's values in its environment file in git and push; upgrade with a newer weaver's `weaver bootstrap`"));
    }
    refuse_downgrade(&cluster).await?;
    apply(&apply_options, cx).await
}

/// The names the chart (`charts/weaver`) labels the controller's objects
/// `app.kubernetes.io/name` with: its own, and the one a release moved from the former
/// configmapsync-operator chart keeps (`nameOverride: configmapsync-operator`, since a
/// Deployment's selector cannot change).
const CONTROLLER_NAMES: [&str; 2] = ["weaver", "configmapsync-operator"];

/// The label selector of the controller's objects: any of [`CONTROLLER_NAMES`].
pub(crate) fn controller_label() -> String {
    format!("app.kubernetes.io/name in ({})", CONTROLLER_NAMES.join(","))
}

/// What installing this weaver's chart over a controller of another version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStep {
    Same,
    /// The controller is older: this weaver upgrades it.
    Upgrade,
    /// The controller is newer by patch releases alone, which change nothing stored (CRD
    /// versions, record format, chart values: reference/compatibility.md): safe.
    PatchDowngrade,
    /// The controller is of a newer minor (or major): its CRDs may store a version, its records
    /// a format, this weaver does not know. Refused.
    Downgrade,
}

impl VersionStep {
    /// From `installed` to this weaver's `ours` (`MAJOR.MINOR.PATCH`, a pre-release and build
    /// ignored).
    pub fn between(installed: &str, ours: &str) -> VersionStep {
        let key = |version: &str| -> Vec<u64> {
            let release = version.trim_start_matches('v').split(['-', '+']).next().unwrap_or_default();
            release.split('.').map(|part| part.parse().unwrap_or(0)).chain(std::iter::repeat(0)).take(3).collect()
        };
        let (installed, ours) = (key(installed), key(ours));
        match () {
            _ if installed == ours => VersionStep::Same,
            _ if installed < ours => VersionStep::Upgrade,
            _ if installed[..2] == ours[..2] => VersionStep::PatchDowngrade,
            _ => VersionStep::Downgrade,
        }
    }
}

/// The version of weaver a controller Deployment runs: its image's tag where that is a version
/// (`image.tag` may run another than the chart's), else its `app.kubernetes.io/version` label
/// (the chart's appVersion: an image pinned by digest); None when neither is a version.
pub fn controller_version(deployment: &Value) -> Option<String> {
    let version = regex::Regex::new(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]*)?$").expect("a valid pattern");
    let image = deployment.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str);
    let tag = image
        .and_then(|image| image.split('@').next())
        .and_then(|image| image.rsplit_once(':'))
        .map(|(_, tag)| tag)
        .filter(|tag| version.is_match(tag));
    let label = deployment.pointer("/metadata/labels/app.kubernetes.io~1version").and_then(Value::as_str);
    tag.or(label.filter(|label| version.is_match(label))).map(str::to_string)
}

/// The refusal of an install over a controller of a newer minor (see [`VersionStep`]), in any
/// namespace: the CRDs it would replace are the cluster's.
async fn refuse_downgrade(cluster: &Cluster) -> Result<()> {
    let ours = env!("CARGO_PKG_VERSION");
    let target = ListTarget { api_version: "apps/v1".into(), kind: "Deployment".into(), namespace: None };
    let label = controller_label();
    for deployment in cluster.list(&BTreeSet::from([target]), &label, ManagedFields::Parsed, 1).await? {
        let Some(installed) = controller_version(&deployment) else { continue };
        let namespace = deployment.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        if VersionStep::between(&installed, ours) == VersionStep::Downgrade {
            return Err(Error::new(format!(
                "weaver {installed} runs in namespace {namespace}, of a newer minor than this weaver ({ours}): nothing was applied"
            ))
            .with_help(format!(
                "install with weaver {installed} or newer; going back a minor is refused (its CRDs and records may hold what weaver {ours} cannot read): see the compatibility page"
            )));
        }
    }
    Ok(())
}

/// The newest deployed record of the release in `namespace`, if it has one.
async fn last_record(cluster: &Cluster, namespace: &str) -> Result<Option<std::sync::Arc<Record>>> {
    let secrets = ListTarget { api_version: "v1".into(), kind: "Secret".into(), namespace: Some(namespace.into()) };
    let selector = format!("{LABEL_RELEASE}={RELEASE},{LABEL_ENVIRONMENT}={ENVIRONMENT}");
    let listed = cluster.list(&BTreeSet::from([secrets]), &selector, ManagedFields::Parsed, 4).await?;
    Ok(weaver_plan::release::record::last_deployed(&listed, ENVIRONMENT)?.remove(RELEASE))
}

/// What an uninstall did beside removing the release.
pub struct Uninstalled {
    pub applied: Applied,
    /// The Secrets `weaver bootstrap` wrote (the repository's credentials), which stay for
    /// `weaver bootstrap --recover`.
    pub kept_secrets: Vec<String>,
    /// The CRDs left in place, each with how many custom resources of its kinds remain.
    pub kept: Vec<(String, usize)>,
    /// The kept CRDs whose conversion webhook was the removed controller's (or a Service no
    /// longer there): set to `None`, so that every version of their objects is still served.
    pub conversion_reset: Vec<String>,
    /// What the controller left in its namespace, which stays with it (see [`Leftovers`]).
    pub left: Leftovers,
    /// `--crds`: the CRDs deleted, and how many custom resources went before them.
    pub deleted_crds: Vec<String>,
    pub deleted_resources: usize,
}

/// What stays in the controller's namespace after an uninstall: objects the release's record
/// does not list (the controller made them as it ran, or they are the records themselves).
#[derive(Debug, Default)]
pub struct Leftovers {
    /// The Secret of the conversion webhook's certificates (`<release>-conversion-tls`), if any.
    pub conversion_secret: Option<String>,
    /// The release's records (Secrets), which `weaver history` reads and a next install or
    /// `weaver bootstrap --recover` continues.
    pub records: usize,
    /// The Leases (`namespace/name`): the controller's leader elections, in its namespace, and
    /// the apply lock of environment [`ENVIRONMENT`] (in `kube-system`, where every
    /// environment's is unless it says otherwise).
    pub leases: Vec<String>,
}

/// The merge patch that makes a CRD convert without a webhook: the API server changes the
/// apiVersion alone, as before a controller set its own (see `weaver_controllers::conversion`),
/// and serves every version whatever Service is gone.
pub fn conversion_none() -> Value {
    serde_json::json!({"spec": {"conversion": {"strategy": "None", "webhook": null}}})
}

/// The Service (namespace, name) a CRD's conversion webhook is behind, when it has one.
pub fn conversion_service(crd: &Value) -> Option<(String, String)> {
    let conversion = crd.pointer("/spec/conversion")?;
    if conversion["strategy"] != "Webhook" {
        return None;
    }
    let service = conversion.pointer("/webhook/clientConfig/service")?;
    Some((service["namespace"].as_str()?.to_string(), service["name"].as_str()?.to_string()))
}

/// Removes the release; with `crds`, its custom resources and CRDs too (see the module's docs).
pub async fn uninstall(options: &InstallOptions, crds: bool, cx: Context<'_>) -> Result<Uninstalled> {
    let on = cx.on;
    let kinds = chart_crds()?;
    check_namespace(&options.namespace)?;
    let cluster = weaver_cluster::Cluster::connect(&options.connect).await?;
    if last_record(&cluster, &options.namespace).await?.is_none() {
        return Err(Error::new(format!(
            "no weaver is installed in namespace {}: release {RELEASE} has no revision there",
            options.namespace
        ))
        .with_help("give the namespace it runs in with -n (`weaver check -n NAMESPACE` finds it)"));
    }
    let deadline = Instant::now() + options.settings.timeout;
    let mut deleted_resources = 0;
    if crds && !options.settings.dry_run {
        for (crd, served) in &kinds {
            deleted_resources += delete_resources(&cluster, crd, served, deadline, on).await?;
        }
    }
    let applied = apply(&apply_options(options, false)?, cx).await?;
    let (mut kept, mut deleted_crds, mut conversion_reset) = (Vec::new(), Vec::new(), Vec::new());
    let crd_kind = cluster.resolve("apiextensions.k8s.io/v1", "CustomResourceDefinition").ok();
    if !crds && !options.settings.dry_run && !applied.report.failed() {
        // A replica still stopping would set its webhook again (it looks every minute).
        wait_controller_gone(&cluster, &options.namespace, deadline).await?;
    }
    for (crd, served) in &kinds {
        let Some(crd_kind) = &crd_kind else { break };
        if crds && !options.settings.dry_run {
            if cluster.delete(crd_kind, None, crd, false).await? == weaver_cluster::Deleted::Deleted {
                on(Progress::Status(format!("customresourcedefinition {crd} deleted")));
                deleted_crds.push(crd.clone());
            }
            continue;
        }
        if let Some(served) = served {
            kept.push((crd.clone(), resources(&cluster, served).await?.len()));
        }
        if !options.settings.dry_run
            && !applied.report.failed()
            && converts_at_a_removed_service(&cluster, crd_kind, crd, &options.namespace).await?
        {
            cluster.merge_patch(crd_kind, None, crd, &conversion_none(), "resetting the conversion of").await?;
            conversion_reset.push(crd.clone());
        }
    }
    let secret_kind = cluster.resolve("v1", "Secret").ok();
    let mut kept_secrets = Vec::new();
    for name in [SOURCE_SECRET, CA_SECRET] {
        if let Some(kind) = &secret_kind
            && cluster.get(kind, Some(&options.namespace), name).await?.is_some()
        {
            kept_secrets.push(format!("{}/{name}", options.namespace));
        }
    }
    let left = leftovers(&cluster, &options.namespace).await?;
    Ok(Uninstalled { applied, kept_secrets, kept, conversion_reset, left, deleted_crds, deleted_resources })
}

/// Whether CRD `name`'s conversion webhook is behind a Service of the uninstalled `namespace`
/// (the controller's, just removed), or behind one that is not there: the API server could
/// serve its objects at no version but the one they are stored at. Another install's webhook
/// (a shard's, in its own namespace) is left to it while its Service is there.
async fn converts_at_a_removed_service(
    cluster: &Cluster,
    crd_kind: &ServedKind,
    name: &str,
    namespace: &str,
) -> Result<bool> {
    let Some(crd) = cluster.get(crd_kind, None, name).await? else { return Ok(false) };
    let Some((service_namespace, service)) = conversion_service(&crd) else { return Ok(false) };
    if service_namespace == namespace {
        return Ok(true);
    }
    let Ok(service_kind) = cluster.resolve("v1", "Service") else { return Ok(true) };
    Ok(cluster.get(&service_kind, Some(&service_namespace), &service).await?.is_none())
}

/// Waits until no Pod of the controller runs in `namespace` (their Deployment was just
/// removed), or the deadline.
async fn wait_controller_gone(cluster: &Cluster, namespace: &str, deadline: Instant) -> Result<()> {
    if cluster.resolve("v1", "Pod").is_err() {
        return Ok(());
    }
    let pods = ListTarget { api_version: "v1".into(), kind: "Pod".into(), namespace: Some(namespace.into()) };
    let label = controller_label();
    while !cluster.list(&BTreeSet::from([pods.clone()]), &label, ManagedFields::Parsed, 1).await?.is_empty() {
        if Instant::now() >= deadline {
            return Err(Error::new(format!(
                "the controller's Pods in namespace {namespace} are still there after --timeout: the CRDs' conversion was left as it is"
            ))
            .with_help("run weaver uninstall again once they are gone: it resets the conversion then"));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Ok(())
}

/// What the controller left in `namespace` (see [`Leftovers`]).
async fn leftovers(cluster: &Cluster, namespace: &str) -> Result<Leftovers> {
    let mut left = Leftovers::default();
    if let Ok(secret_kind) = cluster.resolve("v1", "Secret") {
        let name = format!("{RELEASE}-conversion-tls");
        if cluster.get(&secret_kind, Some(namespace), &name).await?.is_some() {
            left.conversion_secret = Some(name);
        }
        let selector = format!("{LABEL_RELEASE}={RELEASE},{LABEL_ENVIRONMENT}={ENVIRONMENT}");
        left.records = cluster.list_metadata(&secret_kind, namespace, &selector).await?.len();
    }
    if let Ok(lease_kind) = cluster.resolve("coordination.k8s.io/v1", "Lease") {
        let leases = cluster.list_metadata(&lease_kind, namespace, "").await?;
        let names = leases.iter().filter_map(|lease| lease.pointer("/metadata/name").and_then(Value::as_str));
        left.leases = names.map(|name| format!("{namespace}/{name}")).collect();
        let subject = LockSubject::Environment { name: ENVIRONMENT.into(), file: Default::default() };
        let lock = subject.lease_name();
        if cluster.get(&lease_kind, Some(DEFAULT_LOCK_NAMESPACE), &lock).await?.is_some() {
            left.leases.push(format!("{DEFAULT_LOCK_NAMESPACE}/{lock}"));
        }
    }
    Ok(left)
}

/// The chart's CRDs by name, each with the first kind its file says it serves (None when it
/// serves none).
fn chart_crds() -> Result<Vec<(String, Option<ServedKind>)>> {
    let mut crds = Vec::new();
    for (path, bytes) in chart_files().iter().filter(|(path, _)| path.starts_with("crds/")) {
        let text = String::from_utf8_lossy(bytes);
        for crd in weaver_yaml::documents(Path::new(path), &text)? {
            let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            crds.push((name, crd));
        }
    }
    Ok(crds
        .into_iter()
        .map(|(name, crd)| (name, served_kinds_of_crd(&crd).into_iter().next().map(|(_, s)| s)))
        .collect())
}

async fn resources(cluster: &Cluster, served: &ServedKind) -> Result<Vec<Value>> {
    let target = ListTarget {
        api_version: served.resource.api_version.clone(),
        kind: served.resource.kind.clone(),
        namespace: None,
    };
    match cluster.resolve(&target.api_version, &target.kind) {
        Ok(_) => cluster.list(&BTreeSet::from([target]), "", ManagedFields::Parsed, 8).await,
        // Not served: the CRD is not installed, so neither is any resource of it.
        Err(_) => Ok(Vec::new()),
    }
}

/// Deletes every custom resource of `served` and waits until each is gone (finalized by the
/// controller, still running): their number.
async fn delete_resources(
    cluster: &Cluster,
    crd: &str,
    served: &Option<ServedKind>,
    deadline: Instant,
    on: OnProgress<'_>,
) -> Result<usize> {
    let Some(served) = served else { return Ok(0) };
    let found = resources(cluster, served).await?;
    let place = |object: &Value| {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string);
        (namespace, name)
    };
    for object in &found {
        let (namespace, name) = place(object);
        cluster.delete(served, namespace.as_deref(), &name, false).await?;
    }
    for object in &found {
        let (namespace, name) = place(object);
        if !cluster.wait_gone(served, namespace.as_deref(), &name, deadline).await? {
            let at = namespace.map_or(name.clone(), |ns| format!("{ns}/{name}"));
            return Err(Error::new(format!(
                "uninstall --crds: {} {at} is still there after --timeout: its finalizer has not run, so the controller and the CRD {crd} were left in place",
                served.resource.kind
            ))
            .with_help("see the controller's log and the resource's events; run the uninstall again once it is gone"));
        }
    }
    if !found.is_empty() {
        on(Progress::Status(format!("{} {} deleted", found.len(), served.resource_name())));
    }
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard, failure};
    use crate::apply::Outcome;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_chart_built_in_installs_upgrades_to_itself_unchanged_and_uninstalls_keeping_its_crds() {
        let fixture = Fixture::start().await;
        let heard = Heard::default();
        let options = fixture.install_options();
        let elsewhere = InstallOptions { namespace: "ops".into(), ..options.clone() };
        let desired = render_install(&elsewhere, heard.cx()).unwrap();
        let keys: Vec<_> = desired.rendered.manifests().map(|m| m.key()).collect();
        let crds: Vec<&str> =
            keys.iter().filter(|k| k.kind == "CustomResourceDefinition").map(|k| k.name.as_str()).collect();
        assert_eq!(crds, ["configmapsyncs.weaver.example.com", "environmentsyncs.weaver.example.com"]);
        assert!(keys.iter().any(|k| k.kind == "Deployment" && k.namespace.as_deref() == Some("ops")));
        let misnamed = InstallOptions { namespace: "Ops".into(), ..options.clone() };
        assert!(
            failure(render_install(&misnamed, heard.cx())).starts_with("--namespace \"Ops\" is not a namespace's name")
        );

        let installed = install(&options, heard.cx()).await.unwrap();
        assert!(!installed.report.failed(), "{:?}", installed.report.releases);
        assert_eq!(installed.report.releases[0].revision, Some(1));
        assert!(fixture.deployment_in(DEFAULT_NAMESPACE, RELEASE).await.is_some());
        let again = install(&options, heard.cx()).await.unwrap();
        let objects = || again.report.releases.iter().flat_map(|r| &r.objects);
        assert!(objects().all(|o| o.outcome == Outcome::Unchanged), "{:?}", again.report.releases);

        let uninstalled = uninstall(&options, false, heard.cx()).await.unwrap();
        assert!(fixture.deployment_in(DEFAULT_NAMESPACE, RELEASE).await.is_none());
        let kept: Vec<&str> = uninstalled.kept.iter().map(|(crd, _)| crd.as_str()).collect();
        assert_eq!(kept, crds);
        let none = failure(uninstall(&elsewhere, false, heard.cx()).await);
        assert!(none.starts_with("no weaver is installed in namespace ops"), "{none}");
    }
}
