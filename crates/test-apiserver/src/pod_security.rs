//! The Pod Security Standards as kube-apiserver 1.32's `PodSecurity` admission plugin checks
//! them (`k8s.io/pod-security-admission` v0.32, `policy/check_*.go`): the namespace labels that
//! choose a level and version per mode, and the `baseline` and `restricted` checks of a pod
//! spec, each versioned as there, with the same reasons and details, in the same order.
//!
//! The checks read the JSON the fake stores (decoded and defaulted), where Go reads typed
//! structs: a field that is absent or `null` is Go's nil, `false`/`0`/`""` its zero value.
//! `UserNamespacesPodSecurityStandards`, the feature gate that relaxes `runAsNonRoot`,
//! `runAsUser` and `procMount` for pods with `hostUsers: false`, is off by default in 1.32 and
//! so is not modelled.

use crate::error::{Cause, field};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// The newest policy version with checks of its own: `latest`, and any newer version, mean it.
const NEWEST_MINOR: u32 = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(label: &str) -> Option<Level> {
        match label {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

/// A policy version: `latest`, or `v1.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Latest,
    Minor(u32),
}

impl Version {
    /// `^v1\.([0-9]|[1-9][0-9]*)$` or `latest`.
    fn parse(label: &str) -> Option<Version> {
        if label == "latest" {
            return Some(Version::Latest);
        }
        let minor = label.strip_prefix("v1.")?;
        let canonical = !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit());
        if !canonical || (minor.starts_with('0') && minor != "0") {
            return None;
        }
        minor.parse().ok().map(Version::Minor)
    }

    /// The minor version whose checks apply.
    fn checks_minor(self) -> u32 {
        match self {
            Version::Latest => NEWEST_MINOR,
            Version::Minor(minor) => minor.min(NEWEST_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(minor) => write!(f, "v1.{minor}"),
        }
    }
}

/// `restricted:latest`, as messages name a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// What a namespace's labels ask for, per mode (audit only shows in audit logs, which the fake
/// has none of, so it is only parsed for its label errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub warn: LevelVersion,
}

/// `api.PolicyToEvaluate` with the default configuration (every mode `privileged:latest`, no
/// exemptions): the policy of a namespace with these labels, and the errors of labels that do
/// not parse (an unparsable level enforces `restricted`, and warns at `privileged`; an
/// unparsable version is `latest`).
pub fn policy(labels: &Map<String, Value>) -> (Policy, Vec<Cause>) {
    let default = LevelVersion { level: Level::Privileged, version: Version::Latest };
    let mut policy = Policy { enforce: default, warn: default };
    let mut errors = Vec::new();
    let mut invalid = |label: &str, value: &str, detail: &str| {
        let path = format!("metadata.labels[{LABEL_PREFIX}{label}]");
        errors.push(field::invalid(&path, &Value::String(value.to_string()), detail));
    };
    let label = |name: &str| labels.get(&format!("{LABEL_PREFIX}{name}")).map(|v| v.as_str().unwrap_or_default());
    const LEVELS: &str = "must be one of privileged, baseline, restricted";
    const VERSIONS: &str = "must be \"latest\" or \"v1.x\"";
    let enforce_level = label("enforce").map(|value| (value, Level::parse(value)));
    if let Some((value, level)) = enforce_level {
        policy.enforce.level = level.unwrap_or_else(|| {
            invalid("enforce", value, LEVELS);
            Level::Restricted
        });
    }
    if let Some(value) = label("enforce-version") {
        policy.enforce.version = Version::parse(value).unwrap_or_else(|| {
            invalid("enforce-version", value, VERSIONS);
            Version::Latest
        });
    }
    if let Some(value) = label("audit")
        && Level::parse(value).is_none()
    {
        invalid("audit", value, LEVELS);
    }
    if let Some(value) = label("audit-version")
        && Version::parse(value).is_none()
    {
        invalid("audit-version", value, VERSIONS);
    }
    let warn_level = label("warn");
    if let Some(value) = warn_level {
        policy.warn.level = Level::parse(value).unwrap_or_else(|| {
            invalid("warn", value, LEVELS);
            Level::Privileged
        });
    }
    let warn_version = label("warn-version");
    if let Some(value) = warn_version {
        policy.warn.version = Version::parse(value).unwrap_or_else(|| {
            invalid("warn-version", value, VERSIONS);
            Version::Latest
        });
    }
    // Warn defaults to the enforce level when that is set explicitly and stricter.
    let enforce_level_set = enforce_level.is_some_and(|(_, level)| level.is_some());
    if warn_level.is_none() && enforce_level_set && policy.enforce.level > policy.warn.level {
        policy.warn.level = policy.enforce.level;
        if warn_version.is_none() {
            policy.warn.version = policy.enforce.version;
        }
    }
    (policy, errors)
}

/// A check that forbade the pod: `reason`, always shown, and `detail`, which may be empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

/// `AggregateCheckResult.ForbiddenDetail`: `reason (detail), reason, …`.
pub fn forbidden_detail(violations: &[Violation]) -> String {
    let each = violations
        .iter()
        .map(|v| if v.detail.is_empty() { v.reason.clone() } else { format!("{} ({})", v.reason, v.detail) });
    each.collect::<Vec<_>>().join(", ")
}

/// `AggregateCheckResult.ForbiddenReason`: the reasons alone.
pub fn forbidden_reason(violations: &[Violation]) -> String {
    violations.iter().map(|v| v.reason.as_str()).collect::<Vec<_>>().join(", ")
}

/// What a check sees: the pod's (or pod template's) metadata and spec, and the policy's minor
/// version.
struct Pod<'a> {
    meta: &'a Value,
    spec: &'a Value,
    minor: u32,
}

type CheckFn = fn(&Pod) -> Option<Violation>;

/// One check: its ID, its level, the first policy version it applies to, and the baseline check
/// it replaces at the restricted level.
struct Check {
    id: &'static str,
    level: Level,
    since_minor: u32,
    overrides: Option<&'static str>,
    run: CheckFn,
}

/// Every check, baseline ones then restricted ones, each group sorted by ID: the order
/// violations are reported in.
const CHECKS: &[Check] = &[
    baseline("appArmorProfile", app_armor_profile),
    baseline("capabilities_baseline", capabilities_baseline),
    baseline("hostNamespaces", host_namespaces),
    baseline("hostPathVolumes", host_path_volumes),
    baseline("hostPorts", host_ports),
    baseline("privileged", privileged),
    baseline("procMount", proc_mount),
    baseline("seLinuxOptions", se_linux_options),
    baseline("seccompProfile_baseline", seccomp_profile_baseline),
    baseline("sysctls", sysctls),
    baseline("windowsHostProcess", windows_host_process),
    restricted("allowPrivilegeEscalation", 8, None, allow_privilege_escalation),
    restricted("capabilities_restricted", 22, Some("capabilities_baseline"), capabilities_restricted),
    restricted("restrictedVolumes", 0, Some("hostPathVolumes"), restricted_volumes),
    restricted("runAsNonRoot", 0, None, run_as_non_root),
    restricted("runAsUser", 23, None, run_as_user),
    restricted("seccompProfile_restricted", 19, Some("seccompProfile_baseline"), seccomp_profile_restricted),
];

const fn baseline(id: &'static str, run: CheckFn) -> Check {
    Check { id, level: Level::Baseline, since_minor: 0, overrides: None, run }
}

const fn restricted(id: &'static str, since_minor: u32, overrides: Option<&'static str>, run: CheckFn) -> Check {
    Check { id, level: Level::Restricted, since_minor, overrides, run }
}

/// The violations of a pod (`meta` and `spec` of a Pod or of a workload's pod template) against
/// `policy`, in the plugin's order; none at `privileged`.
pub fn evaluate(policy: LevelVersion, meta: &Value, spec: &Value) -> Vec<Violation> {
    let minor = policy.version.checks_minor();
    let applies = |check: &&Check| check.level <= policy.level && check.since_minor <= minor;
    let overridden: BTreeSet<&str> = CHECKS.iter().filter(applies).filter_map(|c| c.overrides).collect();
    let pod = Pod { meta, spec, minor };
    CHECKS
        .iter()
        .filter(applies)
        .filter(|check| !overridden.contains(check.id))
        .filter_map(|check| (check.run)(&pod))
        .collect()
}

fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation { reason: reason.into(), detail: detail.into() })
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// `"a", "b"`: each item in double quotes, unescaped, as `joinQuote` writes them.
fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| format!("\"{}\"", s.as_ref())).collect();
    items.join(", ")
}

/// `container "a"` / `containers "a", "b"`.
fn containers_named(names: &[String]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// Init containers, containers, then ephemeral containers, as `visitContainers` walks them.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |list| spec[list].as_array().into_iter().flatten())
}

fn name(container: &Value) -> String {
    container["name"].as_str().unwrap_or_default().to_string()
}

/// The containers whose `securityContext` satisfies `bad`, by name.
fn containers_where(spec: &Value, mut bad: impl FnMut(&Value) -> bool) -> Vec<String> {
    containers(spec).filter(|c| bad(&c["securityContext"])).map(name).collect()
}

/// A field that Go would decode to a non-nil pointer, map or slice.
fn set(value: &Value) -> bool {
    !value.is_null()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn is_windows(spec: &Value) -> bool {
    spec["os"]["name"] == "windows"
}

/// `pod`, then `container(s) "…"`, joined with ` and `: who set a forbidden value.
fn setters(pod: bool, containers: &[String]) -> String {
    let mut who = Vec::new();
    if pod {
        who.push("pod".to_string());
    }
    if !containers.is_empty() {
        who.push(containers_named(containers));
    }
    who.join(" and ")
}

fn app_armor_profile(pod: &Pod) -> Option<Violation> {
    let allowed_type = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut bad_values = BTreeSet::new();
    let mut pod_bad = false;
    let profile = &pod.spec["securityContext"]["appArmorProfile"];
    if set(profile) && !allowed_type(text(&profile["type"])) {
        pod_bad = true;
        bad_values.insert(text(&profile["type"]).to_string());
    }
    let bad_containers = containers_where(pod.spec, |sc| {
        let profile = &sc["appArmorProfile"];
        let bad = set(profile) && !allowed_type(text(&profile["type"]));
        if bad {
            bad_values.insert(text(&profile["type"]).to_string());
        }
        bad
    });
    let allowed_annotation = |v: &str| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
    let mut annotations: Vec<String> = pod.meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/") && !allowed_annotation(text(v))
        })
        .map(|(k, v)| format!("{k}={}", go_quote(text(v))))
        .collect();
    annotations.sort();
    let mut who = setters(pod_bad, &bad_containers);
    let mut values: Vec<String> = bad_values.into_iter().collect();
    if !annotations.is_empty() {
        let noun = pluralize("annotation", "annotations", annotations.len());
        who = if who.is_empty() { noun.to_string() } else { format!("{who} and {noun}") };
        values.extend(annotations);
    }
    if who.is_empty() {
        return None;
    }
    violation(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", values.len()),
        format!("{who} must not set AppArmor profile type to {}", join_quote(&values)),
    )
}

const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities(security_context: &Value) -> impl Iterator<Item = &str> {
    security_context["capabilities"]["add"].as_array().into_iter().flatten().map(text)
}

fn capabilities_baseline(pod: &Pod) -> Option<Violation> {
    let mut forbidden = BTreeSet::new();
    let bad = containers_where(pod.spec, |sc| {
        let mut bad = false;
        for capability in added_capabilities(sc).filter(|c| !DEFAULT_CAPABILITIES.contains(c)) {
            forbidden.insert(capability.to_string());
            bad = true;
        }
        bad
    });
    if bad.is_empty() {
        return None;
    }
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad),
            join_quote(&forbidden)
        ),
    )
}

fn capabilities_restricted(pod: &Pod) -> Option<Violation> {
    if pod.minor >= 25 && is_windows(pod.spec) {
        return None;
    }
    let missing_drop_all = containers_where(pod.spec, |sc| {
        !sc["capabilities"]["drop"].as_array().is_some_and(|drop| drop.iter().any(|c| c == "ALL"))
    });
    let mut forbidden = BTreeSet::new();
    let adding = containers_where(pod.spec, |sc| {
        let mut bad = false;
        for capability in added_capabilities(sc).filter(|c| *c != "NET_BIND_SERVICE") {
            forbidden.insert(capability.to_string());
            bad = true;
        }
        bad
    });
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&forbidden)
        ));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

fn host_namespaces(pod: &Pod) -> Option<Violation> {
    let shared: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|field| pod.spec[*field] == true)
        .map(|field| format!("{field}=true"))
        .collect();
    if shared.is_empty() {
        return None;
    }
    violation("host namespaces", shared.join(", "))
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

fn host_path_volumes(pod: &Pod) -> Option<Violation> {
    let host: Vec<String> = volumes(pod.spec).filter(|v| set(&v["hostPath"])).map(name).collect();
    if host.is_empty() {
        return None;
    }
    violation("hostPath volumes", format!("{} {}", pluralize("volume", "volumes", host.len()), join_quote(&host)))
}

fn host_ports(pod: &Pod) -> Option<Violation> {
    let mut ports = BTreeSet::new();
    let bad: Vec<String> = containers(pod.spec)
        .filter(|c| {
            let used: Vec<i64> = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["hostPort"].as_i64())
                .filter(|p| *p != 0)
                .collect();
            ports.extend(used.iter().map(i64::to_string));
            !used.is_empty()
        })
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_named(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(pod: &Pod) -> Option<Violation> {
    let bad = containers_where(pod.spec, |sc| sc["privileged"] == true);
    if bad.is_empty() {
        return None;
    }
    violation("privileged", format!("{} must not set securityContext.privileged=true", containers_named(&bad)))
}

fn proc_mount(pod: &Pod) -> Option<Violation> {
    let mut types = BTreeSet::new();
    let bad = containers_where(pod.spec, |sc| {
        let mount = &sc["procMount"];
        let bad = set(mount) && mount != "Default";
        if bad {
            types.insert(text(mount).to_string());
        }
        bad
    });
    if bad.is_empty() {
        return None;
    }
    violation(
        "procMount",
        format!("{} must not set securityContext.procMount to {}", containers_named(&bad), join_quote(&types)),
    )
}

fn se_linux_options(pod: &Pod) -> Option<Violation> {
    let mut allowed_types = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if pod.minor >= 31 {
        allowed_types.push("container_engine_t");
    }
    let mut bad_types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut valid = |options: &Value| {
        if !set(options) {
            return true;
        }
        let mut ok = true;
        if !allowed_types.contains(&text(&options["type"])) {
            bad_types.insert(text(&options["type"]).to_string());
            ok = false;
        }
        if !text(&options["user"]).is_empty() {
            user = true;
            ok = false;
        }
        if !text(&options["role"]).is_empty() {
            role = true;
            ok = false;
        }
        ok
    };
    let pod_bad = !valid(&pod.spec["securityContext"]["seLinuxOptions"]);
    let bad = containers_where(pod.spec, |sc| !valid(&sc["seLinuxOptions"]));
    let who = setters(pod_bad, &bad);
    if who.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !bad_types.is_empty() {
        what.push(format!("{} {}", pluralize("type", "types", bad_types.len()), join_quote(&bad_types)));
    }
    if user {
        what.push("user may not be set".to_string());
    }
    if role {
        what.push("role may not be set".to_string());
    }
    violation("seLinuxOptions", format!("{who} set forbidden securityContext.seLinuxOptions: {}", what.join("; ")))
}

fn valid_seccomp_type(profile_type: &str) -> bool {
    matches!(profile_type, "Localhost" | "RuntimeDefault")
}

/// Who set a seccomp profile type that is not allowed, and those types; `container_unset` is
/// called with each container that sets none.
fn seccomp_setters(spec: &Value, mut container_unset: impl FnMut(&Value)) -> (bool, Vec<String>, BTreeSet<String>) {
    let mut bad_values = BTreeSet::new();
    let profile = &spec["securityContext"]["seccompProfile"];
    let pod_bad = set(profile) && !valid_seccomp_type(text(&profile["type"]));
    if pod_bad {
        bad_values.insert(text(&profile["type"]).to_string());
    }
    let mut bad = Vec::new();
    for container in containers(spec) {
        let profile = &container["securityContext"]["seccompProfile"];
        if !set(profile) {
            container_unset(container);
        } else if !valid_seccomp_type(text(&profile["type"])) {
            bad.push(name(container));
            bad_values.insert(text(&profile["type"]).to_string());
        }
    }
    (pod_bad, bad, bad_values)
}

fn seccomp_profile_baseline(pod: &Pod) -> Option<Violation> {
    if pod.minor < 19 {
        return seccomp_annotations(pod);
    }
    let (pod_bad, bad, values) = seccomp_setters(pod.spec, |_| {});
    let who = setters(pod_bad, &bad);
    if who.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!("{who} must not set securityContext.seccompProfile.type to {}", join_quote(&values)),
    )
}

/// Before 1.19, seccomp profiles were annotations.
fn seccomp_annotations(pod: &Pod) -> Option<Violation> {
    let valid = |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let annotations = &pod.meta["annotations"];
    let mut keys = vec!["seccomp.security.alpha.kubernetes.io/pod".to_string()];
    keys.extend(containers(pod.spec).map(|c| format!("container.seccomp.security.alpha.kubernetes.io/{}", name(c))));
    let forbidden: BTreeSet<String> = keys
        .iter()
        .filter_map(|key| annotations.get(key).map(|v| (key, text(v))))
        .filter(|(_, v)| !valid(v))
        .map(|(key, v)| format!("{key}={}", go_quote(v)))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    let list: Vec<String> = forbidden.into_iter().collect();
    violation(
        "seccompProfile",
        format!("forbidden {} {}", pluralize("annotation", "annotations", list.len()), list.join(", ")),
    )
}

fn seccomp_profile_restricted(pod: &Pod) -> Option<Violation> {
    if pod.minor >= 25 && is_windows(pod.spec) {
        return None;
    }
    let mut unset = Vec::new();
    let (pod_bad, bad, values) = seccomp_setters(pod.spec, |c| unset.push(name(c)));
    let who = setters(pod_bad, &bad);
    if !who.is_empty() {
        return violation(
            "seccompProfile",
            format!("{who} must not set securityContext.seccompProfile.type to {}", join_quote(&values)),
        );
    }
    // A valid pod-level profile covers the containers that set none.
    let pod_profile = &pod.spec["securityContext"]["seccompProfile"];
    if unset.is_empty() || set(pod_profile) {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_named(&unset)
        ),
    )
}

fn sysctls(pod: &Pod) -> Option<Violation> {
    let mut allowed = vec![
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    if pod.minor >= 27 {
        allowed.push("net.ipv4.ip_local_reserved_ports");
    }
    if pod.minor >= 29 {
        allowed.extend([
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ]);
    }
    if pod.minor >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    let forbidden: Vec<&str> = pod.spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| text(&s["name"]))
        .filter(|name| !allowed.contains(name))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    violation("forbidden sysctls", forbidden.join(", "))
}

fn windows_host_process(pod: &Pod) -> Option<Violation> {
    let host_process = |sc: &Value| sc["windowsOptions"]["hostProcess"] == true;
    let bad = containers_where(pod.spec, host_process);
    let who = setters(host_process(&pod.spec["securityContext"]), &bad);
    if who.is_empty() {
        return None;
    }
    violation("hostProcess", format!("{who} must not set securityContext.windowsOptions.hostProcess=true"))
}

fn allow_privilege_escalation(pod: &Pod) -> Option<Violation> {
    if pod.minor >= 25 && is_windows(pod.spec) {
        return None;
    }
    let bad = containers_where(pod.spec, |sc| sc["allowPrivilegeEscalation"] != false);
    if bad.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_named(&bad)),
    )
}

/// The volume sources the restricted level allows, and the restricted ones in the order the
/// check names them.
const ALLOWED_VOLUME_SOURCES: &[&str] =
    &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes(pod: &Pod) -> Option<Violation> {
    let mut types = BTreeSet::new();
    let bad: Vec<String> = volumes(pod.spec)
        .filter(|volume| !ALLOWED_VOLUME_SOURCES.iter().any(|source| set(&volume[*source])))
        .map(|volume| {
            let source = RESTRICTED_VOLUME_SOURCES.iter().find(|source| set(&volume[**source]));
            types.insert(source.copied().unwrap_or("unknown"));
            name(volume)
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("restricted volume type", "restricted volume types", types.len()),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(pod: &Pod) -> Option<Violation> {
    let pod_value = &pod.spec["securityContext"]["runAsNonRoot"];
    let pod_false = *pod_value == false;
    let pod_true = *pod_value == true;
    let explicitly_bad = containers_where(pod.spec, |sc| sc["runAsNonRoot"] == false);
    let implicitly_bad = containers_where(pod.spec, |sc| !set(&sc["runAsNonRoot"]) && !pod_true);
    let who = setters(pod_false, &explicitly_bad);
    if !who.is_empty() {
        return violation("runAsNonRoot != true", format!("{who} must not set securityContext.runAsNonRoot=false"));
    }
    if implicitly_bad.is_empty() {
        return None;
    }
    violation(
        "runAsNonRoot != true",
        format!("pod or {} must set securityContext.runAsNonRoot=true", containers_named(&implicitly_bad)),
    )
}

fn run_as_user(pod: &Pod) -> Option<Violation> {
    let root = |sc: &Value| sc["runAsUser"] == 0;
    let who = setters(root(&pod.spec["securityContext"]), &containers_where(pod.spec, root));
    if who.is_empty() {
        return None;
    }
    violation("runAsUser=0", format!("{who} must not set runAsUser=0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn restricted_latest() -> LevelVersion {
        LevelVersion { level: Level::Restricted, version: Version::Latest }
    }

    fn labels(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), json!(v))).collect()
    }

    #[test]
    fn checks_run_baseline_then_restricted_each_sorted_by_id_as_go_sorts_strings() {
        for level in [Level::Baseline, Level::Restricted] {
            let ids: Vec<&str> = CHECKS.iter().filter(|c| c.level == level).map(|c| c.id).collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable(); // byte order, as Go's `<` on strings
            assert_eq!(ids, sorted);
        }
        let restricted_first = CHECKS.iter().position(|c| c.level == Level::Restricted).unwrap();
        assert!(CHECKS[restricted_first..].iter().all(|c| c.level == Level::Restricted));
    }

    #[test]
    fn labels_choose_levels_and_warn_follows_a_stricter_enforce() {
        let (policy_of, errors) = policy(&labels(&[("enforce", "restricted")]));
        assert!(errors.is_empty());
        assert_eq!(policy_of.warn, restricted_latest(), "warn defaults to an explicit, stricter enforce level");
        let (policy_of, _) =
            policy(&labels(&[("enforce", "baseline"), ("enforce-version", "v1.24"), ("warn", "privileged")]));
        assert_eq!(policy_of.enforce.to_string(), "baseline:v1.24");
        assert_eq!(policy_of.warn.level, Level::Privileged, "an explicit warn level stays");
        let (policy_of, _) = policy(&Map::new());
        assert_eq!((policy_of.enforce.level, policy_of.warn.level), (Level::Privileged, Level::Privileged));
    }

    #[test]
    fn invalid_labels_are_field_errors_and_fail_closed_for_enforce() {
        let (policy_of, errors) =
            policy(&labels(&[("enforce", "strict"), ("warn-version", "v2.0"), ("audit", "x"), ("warn", "nope")]));
        let messages: Vec<(String, String)> = errors.into_iter().map(|c| (c.field, c.message)).collect();
        assert_eq!(
            messages,
            [
                (
                    "metadata.labels[pod-security.kubernetes.io/enforce]".to_string(),
                    "Invalid value: \"strict\": must be one of privileged, baseline, restricted".to_string()
                ),
                (
                    "metadata.labels[pod-security.kubernetes.io/audit]".to_string(),
                    "Invalid value: \"x\": must be one of privileged, baseline, restricted".to_string()
                ),
                (
                    "metadata.labels[pod-security.kubernetes.io/warn]".to_string(),
                    "Invalid value: \"nope\": must be one of privileged, baseline, restricted".to_string()
                ),
                (
                    "metadata.labels[pod-security.kubernetes.io/warn-version]".to_string(),
                    "Invalid value: \"v2.0\": must be \"latest\" or \"v1.x\"".to_string()
                ),
            ]
        );
        assert_eq!(policy_of.enforce.level, Level::Restricted, "an unparsable enforce level is restricted");
        assert_eq!(policy_of.warn.level, Level::Privileged, "an unparsable warn level is privileged");
        for (label, valid) in [("v1.0", true), ("v1.25", true), ("v1.05", false), ("v1.", false), ("1.25", false)] {
            assert_eq!(Version::parse(label).is_some(), valid, "{label}");
        }
    }

    #[test]
    fn versions_pick_the_checks_of_their_time() {
        let pod = json!({"containers": [{"name": "a", "securityContext": {
            "runAsUser": 0, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]});
        let at = |version| {
            let violations = evaluate(LevelVersion { level: Level::Restricted, version }, &json!({}), &pod);
            forbidden_detail(&violations)
        };
        assert_eq!(at(Version::Minor(22)), "", "runAsUser=0 is checked from 1.23");
        assert_eq!(at(Version::Minor(23)), "runAsUser=0 (container \"a\" must not set runAsUser=0)");
        assert_eq!(at(Version::Minor(40)), at(Version::Latest), "a future version is the newest");
        let sysctl = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem"}]}, "containers": []});
        let baseline = |minor| {
            evaluate(LevelVersion { level: Level::Baseline, version: Version::Minor(minor) }, &json!({}), &sysctl)
        };
        assert_eq!(forbidden_detail(&baseline(31)), "forbidden sysctls (net.ipv4.tcp_rmem)");
        assert!(baseline(32).is_empty());
    }

    #[test]
    fn before_1_22_restricted_checks_capabilities_as_baseline_does() {
        let pod = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}]});
        let detail = |minor| {
            let lv = LevelVersion { level: Level::Restricted, version: Version::Minor(minor) };
            evaluate(lv, &json!({}), &pod).into_iter().map(|v| v.reason).collect::<Vec<_>>()
        };
        assert!(detail(21).contains(&"non-default capabilities".to_string()));
        assert!(!detail(22).contains(&"non-default capabilities".to_string()));
        assert!(detail(22).contains(&"unrestricted capabilities".to_string()));
    }
}
