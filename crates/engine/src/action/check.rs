//! `weaver check`: whether a cluster can run weaver's in-cluster half (`--pre`), and whether the
//! one installed there works, as `flux check` tells: the server's version and clock, the CRDs
//! established and their stored versions, the controller's Deployment ready, its version one
//! this weaver may install over, its leader Lease renewed, its Services with endpoints, and the
//! account of each EnvironmentSync it serves able to read the Secrets it names, weaver's own
//! EnvironmentSync (`weaver bootstrap`'s) Ready, and each CRD's conversion webhook behind a
//! Service that is there. Each finding that fails says what to do.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::install::{RELEASE, VersionStep, controller_label, conversion_none, conversion_service};
use weaver_api::OPERATOR_NAME;
use weaver_api::environment_sync::EnvironmentSync;
use weaver_cluster::{Access, Cluster, ConnectOptions, ListTarget, ManagedFields, Question, Readiness, Subject};
use weaver_core::error::Result;

/// The oldest Kubernetes minor weaver's chart installs on: its approvals are a
/// ValidatingAdmissionPolicy of `admissionregistration.k8s.io/v1`.
pub const OLDEST_MINOR: u32 = 30;

/// The most the API server's clock may differ from this machine's: Leases (the apply lock,
/// leadership) compare times written by different clocks.
pub const CLOCK_TOLERANCE: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// The CRDs of the in-cluster half.
pub const CRDS: [&str; 2] = ["environmentsyncs.weaver.example.com", "configmapsyncs.weaver.example.com"];

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub connect: ConnectOptions,
    /// Where the controller runs.
    pub namespace: String,
    /// Before an install: the server and what the caller may install, not the installation.
    pub pre: bool,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was looked at: `kubernetes`, `clock`, `crd/<name>`, `controller`, `version/<name>`,
    /// `leader`, `service/<name>`, `selfsync/<namespace>/<name>`, `environmentsync/<namespace>/<name>`,
    /// `rights/<verb> <resource>`.
    pub subject: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, for a finding that is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding { subject: subject.into(), ok: true, detail: detail.into(), fix: None }
    }

    fn failed(subject: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { subject: subject.into(), ok: false, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// What `weaver check` found, in the order looked at.
#[derive(Debug, Clone)]
pub struct Checked {
    pub findings: Vec<Finding>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|finding| finding.ok)
    }
}

pub async fn check(options: &CheckOptions) -> Result<Checked> {
    let cluster = Cluster::connect(&options.connect).await?;
    let offset = cluster.clock_offset().await?;
    let mut findings = vec![server_version(&cluster).await?, clock(offset)];
    if options.pre {
        findings.extend(install_rights(&cluster, &options.namespace).await?);
        return Ok(Checked { findings });
    }
    findings.extend(crds(&cluster).await?);
    let deployments = list(&cluster, "apps/v1", "Deployment", Some(&options.namespace), &controller_label()).await?;
    findings.extend(controller(&cluster, &options.namespace, &deployments, offset).await?);
    findings.extend(own_syncs(&cluster, &options.namespace, &deployments).await?);
    findings.extend(versions(&deployments));
    findings.extend(tenants(&cluster, &served_selectors(&deployments)).await?);
    Ok(Checked { findings })
}

async fn server_version(cluster: &Cluster) -> Result<Finding> {
    let server = cluster.capabilities().await?;
    let minor: Option<u32> = server.minor.trim_end_matches('+').parse().ok();
    let version = &server.git_version;
    Ok(match (server.major.as_str(), minor) {
        ("1", Some(minor)) if minor < OLDEST_MINOR => Finding::failed(
            "kubernetes",
            format!("{version}, older than 1.{OLDEST_MINOR}"),
            format!("upgrade the cluster to Kubernetes 1.{OLDEST_MINOR} or later"),
        ),
        _ => Finding::ok("kubernetes", format!("{version} (1.{OLDEST_MINOR} or later)")),
    })
}

fn clock(offset: Option<jiff::SignedDuration>) -> Finding {
    match offset {
        None => Finding::ok("clock", "the API server sent no Date: not compared"),
        Some(offset) if offset.abs() > CLOCK_TOLERANCE => Finding::failed(
            "clock",
            format!("the API server's clock is {} this machine's", ahead_or_behind(offset)),
            "synchronise the clocks (NTP): Leases held by the apply lock and the leader compare their times",
        ),
        Some(offset) => Finding::ok("clock", format!("within {}s of the API server's", offset.abs().as_secs())),
    }
}

fn ahead_or_behind(offset: jiff::SignedDuration) -> String {
    let seconds = offset.abs().as_secs();
    if offset.is_negative() { format!("{seconds}s behind") } else { format!("{seconds}s ahead of") }
}

/// May the caller install: the CRDs, the ClusterRoles and their bindings, the namespace's
/// objects?
async fn install_rights(cluster: &Cluster, namespace: &str) -> Result<Vec<Finding>> {
    let asks = [
        ("create", "apiextensions.k8s.io", "customresourcedefinitions", ""),
        ("create", "rbac.authorization.k8s.io", "clusterroles", ""),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", ""),
        ("create", "apps", "deployments", namespace),
        ("create", "", "secrets", namespace),
    ];
    let mut findings = Vec::new();
    for (verb, group, resource, ns) in asks {
        let question = Question {
            verb,
            group: group.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: String::new(),
        };
        let subject = format!("rights/{verb} {resource}");
        let place = if ns.is_empty() { String::new() } else { format!(" in namespace {ns}") };
        findings.push(match cluster.may_i(&question).await? {
            true => Finding::ok(subject, format!("you may {verb} {resource}{place}")),
            false => Finding::failed(
                subject,
                format!("you may not {verb} {resource}{place}"),
                "install as a cluster administrator (the chart makes CRDs and ClusterRoles)",
            ),
        });
    }
    Ok(findings)
}

async fn crds(cluster: &Cluster) -> Result<Vec<Finding>> {
    let served = cluster.resolve("apiextensions.k8s.io/v1", "CustomResourceDefinition").map_err(|_| {
        weaver_core::Error::new("the API server serves no apiextensions.k8s.io/v1 CustomResourceDefinitions")
    })?;
    let mut findings = Vec::new();
    for name in CRDS {
        let subject = format!("crd/{name}");
        let Some(crd) = cluster.get(&served, None, name).await? else {
            findings.push(Finding::failed(
                subject,
                "not installed",
                "install weaver's chart (`weaver install`), or `weaver operator crd | kubectl apply --server-side -f -`",
            ));
            continue;
        };
        let condition = |type_: &str| {
            crd.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|all| all.iter().find(|c| c["type"] == type_))
                .map(|c| (c["status"] == "True", c["message"].as_str().unwrap_or_default().to_string()))
        };
        let stored: Vec<&str> = crd
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .map(|versions| versions.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let storage = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|versions| versions.iter().find(|v| v["storage"] == true))
            .and_then(|v| v["name"].as_str())
            .unwrap_or_default();
        let webhook = crd.pointer("/spec/conversion/strategy").and_then(Value::as_str) == Some("Webhook");
        let trusted = crd
            .pointer("/spec/conversion/webhook/clientConfig/caBundle")
            .and_then(Value::as_str)
            .is_some_and(|bundle| !bundle.is_empty());
        let missing_service = match conversion_service(&crd) {
            Some((namespace, service)) => {
                let services = cluster.resolve("v1", "Service").ok();
                let there = match &services {
                    Some(kind) => cluster.get(kind, Some(&namespace), &service).await?.is_some(),
                    None => false,
                };
                (!there).then_some((namespace, service))
            }
            None => None,
        };
        findings.push(match condition("Established") {
            Some((true, _)) if missing_service.is_some() => {
                let (namespace, service) = missing_service.unwrap_or_default();
                Finding::failed(
                    subject,
                    format!(
                        "established, but its conversion webhook is Service {namespace}/{service}, which does not exist: the API server serves its objects at no version but the one they are stored at"
                    ),
                    format!(
                        "install weaver again in namespace {namespace}, whose controller serves it; or, with no controller there, set its conversion to None: `kubectl patch crd {name} --type merge -p '{}'`",
                        conversion_none()
                    ),
                )
            }
            Some((true, _)) if webhook && !trusted => Finding::failed(
                subject,
                "established, but its conversion webhook has no caBundle: the API server cannot convert its objects between versions",
                "the controller sets it once it runs with --conversion-addr (the chart's default): look at its logs",
            ),
            Some((true, _)) if stored != [storage] => Finding::failed(
                subject,
                format!(
                    "established; objects stored at {} as well as {storage}",
                    stored.iter().filter(|v| **v != storage).copied().collect::<Vec<_>>().join(", ")
                ),
                "the controller moves them once it leads; or run `weaver migrate` (docs/src/reference/compatibility.md)",
            ),
            Some((true, _)) => Finding::ok(subject, format!("established; stored versions {}", stored.join(", "))),
            Some((false, why)) if !why.is_empty() => Finding::failed(
                subject,
                format!("not established: {why}"),
                "look at `kubectl describe crd` for the reason, and apply the CRD again",
            ),
            _ => Finding::failed(
                subject,
                "not established yet",
                "wait a few seconds; if it stays so, look at `kubectl describe crd`",
            ),
        });
    }
    Ok(findings)
}

async fn controller(
    cluster: &Cluster,
    namespace: &str,
    deployments: &[Value],
    offset: Option<jiff::SignedDuration>,
) -> Result<Vec<Finding>> {
    let label = controller_label();
    let install = "install it: `weaver install` (or `weaver bootstrap`, or helm install of charts/weaver: docs/src/guides/install-in-a-cluster.md)";
    if deployments.is_empty() {
        let detail = format!("no Deployment labelled {label} in namespace {namespace}");
        return Ok(vec![Finding::failed("controller", detail, format!("{install}; or give its namespace with -n"))]);
    }
    let mut findings = Vec::new();
    for deployment in deployments {
        let name = deployment.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let subject = format!("controller/{namespace}/{name}");
        let ready = deployment.pointer("/status/readyReplicas").and_then(Value::as_u64).unwrap_or(0);
        let wanted = deployment.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1);
        findings.push(match weaver_cluster::built_in_readiness(deployment) {
            Readiness::Ready => Finding::ok(subject, format!("{ready}/{wanted} replicas ready")),
            Readiness::Pending(why) | Readiness::Failed(why) | Readiness::Unknown(why) => Finding::failed(
                subject,
                format!("not ready ({ready}/{wanted} replicas): {why}"),
                format!("`kubectl -n {namespace} describe deployment {name}` and its Pods' logs say why"),
            ),
        });
    }
    findings.extend(leaders(cluster, namespace, offset).await?);
    for service in list(cluster, "v1", "Service", Some(namespace), &label).await? {
        findings.push(service_endpoints(cluster, namespace, &service).await?);
    }
    Ok(findings)
}

/// The leader Leases (the operator's, and each shard's `<name>-<shard>`): held, and renewed
/// within their duration by the API server's clock.
async fn leaders(cluster: &Cluster, namespace: &str, offset: Option<jiff::SignedDuration>) -> Result<Vec<Finding>> {
    let leases = list(cluster, "coordination.k8s.io/v1", "Lease", Some(namespace), "").await?;
    let shard_prefix = format!("{OPERATOR_NAME}-");
    let ours: Vec<&Value> = leases
        .iter()
        .filter(|lease| {
            let name = lease.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            name == OPERATOR_NAME || name.starts_with(&shard_prefix)
        })
        .collect();
    let fix = |name: &str| format!("the controller's Pods' logs say why no replica leads (Lease {namespace}/{name})");
    if ours.is_empty() {
        return Ok(vec![Finding::failed("leader", "no replica holds the leader Lease", fix(OPERATOR_NAME))]);
    }
    let server_now = jiff::Timestamp::now() + offset.unwrap_or_default();
    Ok(ours
        .into_iter()
        .map(|lease| {
            let name = lease.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let subject = if name == OPERATOR_NAME { "leader".to_string() } else { format!("leader/{name}") };
            let spec = &lease["spec"];
            let holder = spec["holderIdentity"].as_str().filter(|holder| !holder.is_empty());
            let renewed = spec["renewTime"].as_str().and_then(|time| time.parse::<jiff::Timestamp>().ok());
            let duration = spec["leaseDurationSeconds"].as_i64().unwrap_or(15);
            match (holder, renewed) {
                (Some(holder), Some(renewed)) => {
                    let since = renewed.duration_until(server_now).as_secs().max(0);
                    if since > duration {
                        let detail = format!("{holder} last renewed {since}s ago, past its {duration}s");
                        Finding::failed(subject, detail, fix(name))
                    } else {
                        Finding::ok(subject, format!("{holder}, renewed {since}s ago"))
                    }
                }
                _ => Finding::failed(subject, "no replica holds the leader Lease", fix(name)),
            }
        })
        .collect())
}

/// A Service of the controller (webhook, UI, metrics): some endpoint ready behind it.
async fn service_endpoints(cluster: &Cluster, namespace: &str, service: &Value) -> Result<Finding> {
    let name = service.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let selector = format!("kubernetes.io/service-name={name}");
    let slices = list(cluster, "discovery.k8s.io/v1", "EndpointSlice", Some(namespace), &selector).await?;
    let ready = slices
        .iter()
        .flat_map(|slice| slice["endpoints"].as_array().into_iter().flatten())
        .filter(|endpoint| endpoint.pointer("/conditions/ready") != Some(&Value::Bool(false)))
        .count();
    let subject = format!("service/{namespace}/{name}");
    Ok(match ready {
        0 => Finding::failed(
            subject,
            "no ready endpoint",
            "the controller's Pods are not ready, or the Service selects none of them",
        ),
        n => Finding::ok(subject, format!("{n} ready endpoint(s)")),
    })
}

/// The EnvironmentSync by which weaver applies itself from git (the chart's `selfSync`, which
/// `weaver bootstrap` turns on): named as its release, as the controller's Deployment is. While
/// it is not Ready, a change to weaver pushed to git is not applied.
async fn own_syncs(cluster: &Cluster, namespace: &str, deployments: &[Value]) -> Result<Vec<Finding>> {
    let Ok(kind) = cluster.resolve("weaver.example.com/v1beta1", "EnvironmentSync") else { return Ok(Vec::new()) };
    let mut findings = Vec::new();
    for deployment in deployments {
        let name = deployment.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(RELEASE);
        let Some(sync) = cluster.get(&kind, Some(namespace), name).await? else { continue };
        let subject = format!("selfsync/{namespace}/{name}");
        let ready = sync
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"));
        let text = |condition: &Value, field: &str| condition[field].as_str().unwrap_or_default().to_string();
        let applied = sync.pointer("/status/lastAppliedRevision").and_then(Value::as_str).unwrap_or_default();
        let short = &applied[..applied.len().min(12)];
        let describe = format!("`weaver sync get {name} -n {namespace}` and the controller's logs say more");
        findings.push(match ready {
            Some(ready) if ready["status"] == "True" => Finding::ok(
                subject,
                format!("weaver applies itself from git: Ready, at {}", if short.is_empty() { "no commit yet" } else { short }),
            ),
            Some(ready) if ready["status"] == "False" => Finding::failed(
                subject,
                format!(
                    "weaver's own EnvironmentSync {namespace}/{name} is not Ready: {}: {} (changes to weaver pushed to git are not applied)",
                    text(ready, "reason"),
                    text(ready, "message")
                ),
                format!("mend what the message names (push to git, or the cluster), then `weaver sync reconcile {name} -n {namespace}`; {describe}"),
            ),
            Some(ready) => Finding::ok(
                subject,
                format!("weaver's own EnvironmentSync is reconciling: {}: {}", text(ready, "reason"), text(ready, "message")),
            ),
            None => Finding::failed(
                subject,
                format!("weaver's own EnvironmentSync {namespace}/{name} has no Ready condition: no controller has reconciled it"),
                format!("the leader reconciles it (see `leader`); {describe}"),
            ),
        });
    }
    Ok(findings)
}

/// The controller's version beside this weaver's: what `weaver install` of this weaver would be
/// (an upgrade, a patch downgrade, safe, or a downgrade of a minor, refused).
fn versions(deployments: &[Value]) -> Vec<Finding> {
    let ours = env!("CARGO_PKG_VERSION");
    let mut findings = Vec::new();
    for deployment in deployments {
        let name = deployment.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let subject = format!("version/{name}");
        let Some(installed) = super::install::controller_version(deployment) else {
            findings.push(Finding::ok(subject, "no version label nor tag: not compared with this weaver's"));
            continue;
        };
        findings.push(match super::install::VersionStep::between(&installed, ours) {
            VersionStep::Same => Finding::ok(subject, format!("weaver {installed}, as this weaver")),
            VersionStep::Upgrade => {
                Finding::ok(subject, format!("weaver {installed}; this weaver ({ours}) upgrades it (`weaver install`)"))
            }
            VersionStep::PatchDowngrade => Finding::ok(
                subject,
                format!("weaver {installed}; going back to this weaver ({ours}) is safe: a patch release changes nothing stored"),
            ),
            VersionStep::Downgrade => Finding::failed(
                subject,
                format!("weaver {installed}, of a newer minor than this weaver ({ours}): installing this one is refused"),
                format!("use weaver {installed} or newer to check and install"),
            ),
        });
    }
    findings
}

/// The label selectors of the EnvironmentSyncs the controllers reconcile: each Deployment's
/// `--selector` (the chart's `selector`); `[""]` (every one) when one has none.
fn served_selectors(deployments: &[Value]) -> Vec<String> {
    let selector = |deployment: &Value| {
        let containers = deployment.pointer("/spec/template/spec/containers")?.as_array()?;
        let args = containers.iter().filter_map(|c| c["args"].as_array()).flatten();
        args.filter_map(Value::as_str).find_map(|arg| arg.strip_prefix("--selector=")).map(str::to_string)
    };
    let selectors: Option<BTreeSet<String>> = deployments.iter().map(selector).collect();
    match selectors {
        Some(selectors) if !selectors.is_empty() => selectors.into_iter().collect(),
        _ => vec![String::new()],
    }
}

/// Each EnvironmentSync the controllers serve (`selectors`: their `--selector`s) has an account
/// that may read the Secrets it names: the controller reads them as that account.
async fn tenants(cluster: &Cluster, selectors: &[String]) -> Result<Vec<Finding>> {
    if cluster.resolve("weaver.example.com/v1beta1", "EnvironmentSync").is_err() {
        return Ok(Vec::new());
    }
    let access = Access::new(cluster.client(), std::time::Duration::from_secs(60));
    let mut findings = Vec::new();
    // Each once, by namespace and name, whichever selectors match it.
    let mut served = BTreeMap::new();
    for selector in selectors {
        for object in list(cluster, "weaver.example.com/v1beta1", "EnvironmentSync", None, selector).await? {
            let name = |field: &str| object.pointer(field).and_then(Value::as_str).unwrap_or_default().to_string();
            served.insert((name("/metadata/namespace"), name("/metadata/name")), object);
        }
    }
    for object in served.into_values() {
        let sync: EnvironmentSync = match serde_json::from_value(object) {
            Ok(sync) => sync,
            // The API server validated it against the CRD: one that does not read is another
            // version's, not this check's business.
            Err(_) => continue,
        };
        let namespace = sync.metadata.namespace.clone().unwrap_or_default();
        let name = sync.metadata.name.clone().unwrap_or_default();
        let account = sync.spec.service_account_name.clone().unwrap_or_else(|| "default".into());
        let subject = Subject::service_account(&namespace, &account);
        let mut lacking = Vec::new();
        let mut unanswered = None;
        for (field, secret) in named_secrets(&sync) {
            let question = Question {
                verb: "get",
                group: String::new(),
                resource: "secrets".into(),
                namespace: namespace.clone(),
                name: secret.clone(),
            };
            let allowed = match access.may(&subject, &question).await {
                Ok(allowed) => allowed,
                Err(err) => {
                    unanswered = Some(weaver_cluster::api_message(&err));
                    break;
                }
            };
            if !allowed {
                lacking.push(format!("get on Secret {secret} ({field})"));
            }
        }
        let what = format!("environmentsync/{namespace}/{name}");
        if let Some(why) = unanswered {
            findings.push(Finding::failed(
                what,
                format!("the API server did not say what ServiceAccount {namespace}/{account} may do: {why}"),
                "weaver check asks SubjectAccessReviews: give your identity create on subjectaccessreviews",
            ));
            continue;
        }
        findings.push(match lacking.is_empty() {
            true => Finding::ok(what, format!("ServiceAccount {account} may read the Secrets it names")),
            false => Finding::failed(
                what,
                format!("ServiceAccount {namespace}/{account} lacks {}", lacking.join(", ")),
                format!("grant it those verbs in namespace {namespace} (a Role and RoleBinding; the environment-sync chart makes them from its values)"),
            ),
        });
    }
    Ok(findings)
}

/// The Secrets an EnvironmentSync names in its namespace, with the field that names each.
fn named_secrets(sync: &EnvironmentSync) -> Vec<(&'static str, String)> {
    let spec = &sync.spec;
    let mut named = Vec::new();
    if let Some(secret) = &spec.source.secret_ref {
        named.push(("spec.source.secretRef", secret.name.clone()));
    }
    if let Some(secret) = &spec.source.ca_secret_ref {
        named.push(("spec.source.caSecretRef", secret.name.clone()));
    }
    if let Some(decryption) = &spec.decryption {
        named.push(("spec.decryption.secretRef", decryption.secret_ref.name.clone()));
    }
    if let Some(kube_config) = &spec.kube_config {
        named.push(("spec.kubeConfig.secretRef", kube_config.secret_ref.name.clone()));
    }
    if let Some(updates) = &spec.image_updates {
        named.extend(updates.pull_secrets.iter().map(|secret| ("spec.imageUpdates.pullSecrets", secret.name.clone())));
    }
    named
}

async fn list(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    selector: &str,
) -> Result<Vec<Value>> {
    if cluster.resolve(api_version, kind).is_err() {
        return Ok(Vec::new());
    }
    let target =
        ListTarget { api_version: api_version.into(), kind: kind.into(), namespace: namespace.map(Into::into) };
    cluster.list(&BTreeSet::from([target]), selector, ManagedFields::Parsed, 1).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::install::{DEFAULT_NAMESPACE, install};
    use crate::action::testing::{Fixture, Heard};

    /// Each finding's subject and whether it is ok.
    fn found(checked: &Checked) -> Vec<(&str, bool)> {
        checked.findings.iter().map(|f| (f.subject.as_str(), f.ok)).collect()
    }

    fn options(fixture: &Fixture, pre: bool) -> CheckOptions {
        CheckOptions { connect: fixture.connect(), namespace: DEFAULT_NAMESPACE.into(), pre }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn before_an_install_the_server_and_the_callers_rights_are_checked() {
        let fixture = Fixture::start().await;
        let checked = check(&options(&fixture, true)).await.unwrap();
        assert!(checked.ok(), "{:?}", checked.findings);
        fixture.server.forbid("create", "clusterroles", None);
        let checked = check(&options(&fixture, true)).await.unwrap();
        let subjects = [
            ("kubernetes", true),
            ("clock", true),
            ("rights/create customresourcedefinitions", true),
            ("rights/create clusterroles", false),
            ("rights/create clusterrolebindings", true),
            ("rights/create deployments", true),
            ("rights/create secrets", true),
        ];
        assert_eq!(found(&checked), subjects);
        let refused = &checked.findings[3];
        assert_eq!(refused.detail, "you may not create clusterroles");
        assert!(refused.fix.as_deref().is_some_and(|fix| fix.starts_with("install as a cluster administrator")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_crds_and_the_controller_are_missing_until_installed() {
        let fixture = Fixture::start().await;
        let checked = check(&options(&fixture, false)).await.unwrap();
        let missing: Vec<(&str, bool)> = found(&checked).into_iter().skip(2).collect();
        let crds = ["crd/environmentsyncs.weaver.example.com", "crd/configmapsyncs.weaver.example.com"];
        assert_eq!(missing, [(crds[0], false), (crds[1], false), ("controller", false)]);
        install(&fixture.install_options(), Heard::default().cx()).await.unwrap();
        let checked = check(&options(&fixture, false)).await.unwrap();
        let installed = found(&checked);
        assert!(installed.contains(&(crds[0], true)) && installed.contains(&(crds[1], true)), "{installed:?}");
        assert!(installed.contains(&("controller/weaver-system/weaver", true)), "{installed:?}");
        // No controller runs here to lead.
        assert!(installed.contains(&("leader", false)), "{installed:?}");
    }
}
