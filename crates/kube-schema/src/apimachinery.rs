//! The API server's Go validation that no OpenAPI schema carries and every server applies to
//! built-in kinds: object names by kind, label and annotation keys and values
//! (`k8s.io/apimachinery/pkg/util/validation`), and the fields whose values come from a fixed
//! set (`pkg/apis/*/validation`'s `supported…` sets). Messages are apimachinery's.

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`: an RFC 1123 label's shape, whatever its length.
fn is_label_shaped(part: &str) -> bool {
    let b = part.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// An RFC 1123 label: at most 63 characters of `is_label_shaped`. Namespaces are named so.
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && is_label_shaped(name)
}

/// An RFC 1123 subdomain: at most 253 characters, label-shaped parts joined by '.'. As
/// `IsDNS1123Subdomain` checks it, a part may be longer than a label's 63.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_label_shaped)
}

pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// How the server validates an object's name, by kind (`pkg/apis/*/validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Namespaces (and every object's `metadata.namespace`).
    Dns1123Label,
    /// Services: an RFC 1035 label, a letter first.
    Dns1035Label,
    /// RBAC and flow-control objects: `ValidatePathSegmentName` (`system:controller:x` is one).
    PathSegment,
    /// CronJobs: a subdomain of at most 52 characters (its Jobs' names add 11).
    CronJob,
    /// Every other kind, custom resources included.
    Dns1123Subdomain,
}

impl NameRule {
    /// The rule for objects of `kind` in API group `group` (empty for a custom resource's
    /// rule, a subdomain whatever its kind is called).
    pub fn of(group: &str, kind: &str) -> NameRule {
        match (group, kind) {
            ("", "Namespace") => NameRule::Dns1123Label,
            ("", "Service") => NameRule::Dns1035Label,
            ("rbac.authorization.k8s.io" | "flowcontrol.apiserver.k8s.io", _) => NameRule::PathSegment,
            ("batch", "CronJob") => NameRule::CronJob,
            _ => NameRule::Dns1123Subdomain,
        }
    }

    /// What the rule is, in a few words, for messages of weaver's own.
    pub const fn describe(self) -> &'static str {
        match self {
            NameRule::Dns1123Label => {
                "an RFC 1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            }
            NameRule::Dns1035Label => {
                "an RFC 1035 label: at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
            }
            NameRule::PathSegment => "a path segment: not '.' or '..', without '/' or '%'",
            NameRule::CronJob => {
                "an RFC 1123 subdomain of at most 52 characters: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit"
            }
            NameRule::Dns1123Subdomain => {
                "an RFC 1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit"
            }
        }
    }

    /// What is wrong with `name` under the rule, in apimachinery's words; empty: valid.
    pub fn errors(self, name: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let mut too_long = |max: usize| {
            if name.len() > max {
                errors.push(format!("must be no more than {max} characters"));
            }
        };
        match self {
            NameRule::Dns1123Label => {
                too_long(63);
                if !is_label_shaped(name) {
                    errors.push(DNS1123_LABEL_MSG.to_string());
                }
            }
            NameRule::Dns1035Label => {
                too_long(63);
                if !(is_label_shaped(name) && name.as_bytes()[0].is_ascii_lowercase()) {
                    errors.push(DNS1035_LABEL_MSG.to_string());
                }
            }
            NameRule::PathSegment => {
                if name == "." || name == ".." {
                    errors.push(format!("may not be '{name}'"));
                }
                for bad in ["/", "%"] {
                    if name.contains(bad) {
                        errors.push(format!("may not contain '{bad}'"));
                    }
                }
            }
            NameRule::CronJob | NameRule::Dns1123Subdomain => {
                too_long(if self == NameRule::CronJob { 52 } else { 253 });
                if !name.split('.').all(is_label_shaped) {
                    errors.push(DNS1123_SUBDOMAIN_MSG.to_string());
                }
            }
        }
        errors
    }
}

/// `IsQualifiedName`: a label key, or (lowercased) an annotation key: an optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters.
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let (prefix, name) = match key.split('/').collect::<Vec<_>>()[..] {
        [name] => (None, name),
        [prefix, name] => (Some(prefix), name),
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    let mut errors = Vec::new();
    match prefix {
        Some("") => errors.push("prefix part must be non-empty".to_string()),
        Some(prefix) => {
            errors.extend(NameRule::Dns1123Subdomain.errors(prefix).into_iter().map(|e| format!("prefix part {e}")))
        }
        None => {}
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if name.is_empty() || !is_label_value(name) {
        errors.push(format!("name part {QUALIFIED_NAME_RULE}"));
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, or empty.
fn is_label_value(value: &str) -> bool {
    let b = value.as_bytes();
    b.is_empty()
        || (b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

/// `IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !is_label_value(value) {
        errors.push(LABEL_VALUE_MSG.to_string());
    }
    errors
}

/// The most bytes an object's annotations (keys and values) may hold.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// The maps whose keys and values the server checks as labels (values too) or annotations
/// (keys only), by definition and property: ObjectMeta's wherever it appears (objects, pod
/// templates, embedded resources), selectors, node selectors.
pub fn string_map(definition: &str, property: &str) -> Option<StringMap> {
    Some(match (definition, property) {
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "labels") => StringMap::Labels,
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "annotations") => StringMap::Annotations,
        ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", "matchLabels") => StringMap::Labels,
        ("io.k8s.api.core.v1.PodSpec", "nodeSelector") => StringMap::Labels,
        ("io.k8s.api.core.v1.ServiceSpec", "selector") => StringMap::Labels,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMap {
    Labels,
    Annotations,
}

/// The values a built-in field may take, by definition and property, where the server's Go
/// validation refuses any other ("Unsupported value"). An empty string is left to defaulting.
pub fn supported_values(definition: &str, property: &str) -> Option<&'static [&'static str]> {
    const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
    const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
    const UPDATE_STRATEGIES: &[&str] = &["OnDelete", "RollingUpdate"];
    const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
    const NODE_SELECTOR_OPERATORS: &[&str] = &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"];
    let (definition, property) = (definition.strip_prefix("io.k8s.")?, property);
    Some(match (definition, property) {
        (
            "api.core.v1.ContainerPort" | "api.core.v1.ServicePort" | "api.networking.v1.NetworkPolicyPort",
            "protocol",
        ) => PROTOCOLS,
        ("api.discovery.v1.EndpointPort" | "api.core.v1.EndpointPort", "protocol") => PROTOCOLS,
        ("api.core.v1.Container" | "api.core.v1.EphemeralContainer", "imagePullPolicy") => {
            &["Always", "IfNotPresent", "Never"]
        }
        ("api.core.v1.Container" | "api.core.v1.EphemeralContainer", "terminationMessagePolicy") => {
            &["FallbackToLogsOnError", "File"]
        }
        ("api.core.v1.PodSpec", "restartPolicy") => &["Always", "Never", "OnFailure"],
        ("api.core.v1.PodSpec", "dnsPolicy") => &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        ("api.core.v1.PodSpec" | "api.scheduling.v1.PriorityClass", "preemptionPolicy") => {
            &["Never", "PreemptLowerPriority"]
        }
        ("api.core.v1.ServiceSpec", "type") => &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ("api.core.v1.ServiceSpec", "sessionAffinity") => &["ClientIP", "None"],
        ("api.core.v1.ServiceSpec", "externalTrafficPolicy" | "internalTrafficPolicy") => TRAFFIC_POLICIES,
        ("api.core.v1.ServiceSpec", "ipFamilyPolicy") => &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ("api.core.v1.ServiceSpec", "ipFamilies") => &["IPv4", "IPv6"],
        ("api.apps.v1.DeploymentStrategy", "type") => &["Recreate", "RollingUpdate"],
        ("api.apps.v1.StatefulSetUpdateStrategy" | "api.apps.v1.DaemonSetUpdateStrategy", "type") => UPDATE_STRATEGIES,
        ("api.apps.v1.StatefulSetSpec", "podManagementPolicy") => &["OrderedReady", "Parallel"],
        ("api.batch.v1.CronJobSpec", "concurrencyPolicy") => &["Allow", "Forbid", "Replace"],
        ("api.batch.v1.JobSpec", "completionMode") => &["Indexed", "NonIndexed"],
        ("api.core.v1.PersistentVolumeClaimSpec" | "api.core.v1.PersistentVolumeSpec", "accessModes") => ACCESS_MODES,
        ("api.core.v1.PersistentVolumeClaimSpec" | "api.core.v1.PersistentVolumeSpec", "volumeMode") => {
            &["Block", "Filesystem"]
        }
        ("api.networking.v1.HTTPIngressPath", "pathType") => &["Exact", "ImplementationSpecific", "Prefix"],
        ("api.networking.v1.NetworkPolicySpec", "policyTypes") => &["Egress", "Ingress"],
        ("api.core.v1.Toleration", "operator") => &["Equal", "Exists"],
        ("api.core.v1.Toleration" | "api.core.v1.Taint", "effect") => &["NoExecute", "NoSchedule", "PreferNoSchedule"],
        ("api.core.v1.NodeSelectorRequirement", "operator") => NODE_SELECTOR_OPERATORS,
        ("api.core.v1.TopologySpreadConstraint", "whenUnsatisfiable") => &["DoNotSchedule", "ScheduleAnyway"],
        ("api.core.v1.TopologySpreadConstraint", "nodeAffinityPolicy" | "nodeTaintsPolicy") => &["Honor", "Ignore"],
        ("api.core.v1.HTTPGetAction", "scheme") => &["HTTP", "HTTPS"],
        ("api.core.v1.SeccompProfile" | "api.core.v1.AppArmorProfile", "type") => {
            &["Localhost", "RuntimeDefault", "Unconfined"]
        }
        ("api.core.v1.PodSecurityContext", "fsGroupChangePolicy") => &["Always", "OnRootMismatch"],
        ("api.rbac.v1.Subject", "kind") => &["Group", "ServiceAccount", "User"],
        ("api.policy.v1.PodDisruptionBudgetSpec", "unhealthyPodEvictionPolicy") => &["AlwaysAllow", "IfHealthyBudget"],
        (
            "api.admissionregistration.v1.MutatingWebhook" | "api.admissionregistration.v1.ValidatingWebhook",
            "failurePolicy",
        ) => &["Fail", "Ignore"],
        (
            "api.admissionregistration.v1.MutatingWebhook" | "api.admissionregistration.v1.ValidatingWebhook",
            "sideEffects",
        ) => &["None", "NoneOnDryRun"],
        (
            "api.admissionregistration.v1.MutatingWebhook" | "api.admissionregistration.v1.ValidatingWebhook",
            "matchPolicy",
        ) => &["Equivalent", "Exact"],
        ("api.admissionregistration.v1.MutatingWebhook", "reinvocationPolicy") => &["IfNeeded", "Never"],
        ("api.admissionregistration.v1.RuleWithOperations", "scope") => &["*", "Cluster", "Namespaced"],
        ("api.admissionregistration.v1.RuleWithOperations", "operations") => {
            &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]
        }
        ("api.autoscaling.v2.MetricSpec", "type") => &["ContainerResource", "External", "Object", "Pods", "Resource"],
        ("api.autoscaling.v2.MetricTarget", "type") => &["AverageValue", "Utilization", "Value"],
        ("api.autoscaling.v2.HPAScalingPolicy", "type") => &["Percent", "Pods"],
        ("api.autoscaling.v2.HPAScalingRules", "selectPolicy") => &["Disabled", "Max", "Min"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("web.example-1"));
        assert!(!is_dns1123_subdomain("Web"));
        assert!(!is_dns1123_subdomain("-web"));
        assert!(is_dns1123_label("a-1"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        let errors = |group: &str, kind: &str, name: &str| NameRule::of(group, kind).errors(name);
        assert_eq!(errors("", "Service", "1web"), [DNS1035_LABEL_MSG]);
        assert!(errors("rbac.authorization.k8s.io", "ClusterRole", "system:controller:x").is_empty());
        assert_eq!(errors("rbac.authorization.k8s.io", "Role", "a/b"), ["may not contain '/'"]);
        assert!(errors("apps", "Deployment", "web.v1").is_empty());
        assert!(errors("apps", "Deployment", &format!("{}.x", "a".repeat(100))).is_empty());
        assert_eq!(errors("", "Namespace", "web.v1"), [DNS1123_LABEL_MSG]);
        assert_eq!(errors("batch", "CronJob", &"a".repeat(53)), ["must be no more than 52 characters"]);
        assert_eq!(errors("", "ConfigMap", ""), [DNS1123_SUBDOMAIN_MSG]);
    }

    #[test]
    fn label_keys_and_values() {
        for good in ["app", "app.kubernetes.io/name", "example.com/My_Name.1", "a"] {
            assert!(qualified_name_errors(good).is_empty(), "{good}");
        }
        assert_eq!(qualified_name_errors("bad key!"), [format!("name part {QUALIFIED_NAME_RULE}")]);
        assert_eq!(qualified_name_errors("Example.com/x"), [format!("prefix part {DNS1123_SUBDOMAIN_MSG}")]);
        assert_eq!(qualified_name_errors("/x"), ["prefix part must be non-empty"]);
        assert_eq!(qualified_name_errors("a/b/c").len(), 1);
        assert_eq!(qualified_name_errors(&"x".repeat(64)), ["name part must be no more than 63 characters"]);
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("v1.2_3-x").is_empty());
        assert_eq!(label_value_errors("-x"), [LABEL_VALUE_MSG]);
        assert_eq!(label_value_errors("a b"), [LABEL_VALUE_MSG]);
        assert_eq!(label_value_errors(&"x".repeat(64)), ["must be no more than 63 characters"]);
    }
}
